// Command example gets a token, refreshes it and builds API-call headers.
// Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
package main

import (
	"errors"
	"fmt"
	"os"

	"enos-token.local/enostoken"
)

func main() {
	url, key, secret := os.Getenv("ENOS_GATEWAY_URL"), os.Getenv("ENOS_APP_KEY"), os.Getenv("ENOS_APP_SECRET")
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
}
