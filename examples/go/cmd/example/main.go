// Command example gets a token, builds API-call headers, moves files both
// ways, and bounds a call with a context.
// Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"enos-token.local/enostoken"
)

func main() {
	url, key, secret := os.Getenv("ENOS_GATEWAY_URL"), os.Getenv("ENOS_APP_KEY"), os.Getenv("ENOS_APP_SECRET")
	if url == "" || key == "" || secret == "" {
		fmt.Fprintln(os.Stderr, "set ENOS_GATEWAY_URL, ENOS_APP_KEY and ENOS_APP_SECRET")
		os.Exit(2)
	}
	client, err := enostoken.New(url, key, secret)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()
	token, err := client.AccessToken()
	if err != nil {
		var enosError *enostoken.Error
		if errors.As(err, &enosError) {
			fmt.Fprintf(os.Stderr, "%s (gateway status %d)\n", enosError.Message, enosError.ServiceStatus)
		}
		os.Exit(1)
	}
	headers, _ := client.AuthHeaders("pageSize=10", nil)
	fmt.Printf("token: %s… (%d bytes)\n", token[:4], len(token))
	fmt.Printf("headers: %d\n", len(headers))
	if err := files(client); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bounded(client)
}

func bounded(client *enostoken.Client) {
	// snippet:begin go-context
	// The context's deadline (or cancel) ends the call at once: a running
	// call's connection is shut down; no OS thread waits for the gateway.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := client.RequestContext(ctx, "GET", "/fake/v1/echo?delayMs=10000", "", nil)
	fmt.Printf("deadline: %v\n", errors.Is(err, context.DeadlineExceeded)) // an *Error, ENOS_ERR_CANCELLED
	// snippet:end go-context
}

func files(client *enostoken.Client) error {
	readings, err := os.CreateTemp("", "readings-*.csv")
	if err != nil {
		return err
	}
	defer os.Remove(readings.Name())
	fmt.Fprintln(readings, "t,temp\n1,21.5")
	readings.Close()
	// snippet:begin go-files
	// A measurement point with its files (multipart; every part carries its Content-Length).
	upload, err := client.Do(&enostoken.Request{
		Method: "POST", Path: "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1",
		Parts: []enostoken.Part{
			{Name: "enos-message", ContentType: "application/json", Data: []byte(`{"payload":[]}`)},
			{Name: "enos-file", File: readings.Name()}, // streamed from disk
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("upload: %d\n", upload.Status)
	// A file written as it arrives (constant memory; resumed if the connection breaks).
	file, err := os.CreateTemp("", "firmware-*.bin")
	if err != nil {
		return err
	}
	defer os.Remove(file.Name())
	defer file.Close()
	download, err := client.Do(&enostoken.Request{
		Method: "GET",
		Path:   "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/3000000.bin",
		Output: file, // an *os.File is written directly; any io.Writer works
	})
	if err != nil {
		return err
	}
	written, _ := file.Seek(0, io.SeekCurrent)
	fmt.Printf("download: %d %d bytes\n", download.Status, written)
	// snippet:end go-files
	return nil
}
