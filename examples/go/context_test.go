package enostoken

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

const echo10s = "/fake/v1/echo?delayMs=10000"

func TestACancelledContextEndsTheCallWithin50ms(t *testing.T) {
	client := newClient(t)
	if _, err := client.AccessToken(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	var cancelledAt time.Time
	go func() {
		_, err := client.RequestContext(ctx, "GET", echo10s, "", nil)
		ended <- err
	}()
	time.Sleep(200 * time.Millisecond) // the request is on the wire
	cancelledAt = time.Now()
	cancel()
	err := <-ended
	if took := time.Since(cancelledAt); took > 50*time.Millisecond {
		t.Fatalf("the call ended %v after the cancel", took)
	}
	var failure *Error
	if !errors.As(err, &failure) || failure.StatusName != "ENOS_ERR_CANCELLED" || !errors.Is(err, context.Canceled) {
		t.Fatalf("%#v", err)
	}
	response, err := client.RequestContext(context.Background(), "GET", "/fake/v1/echo", "", nil)
	if err != nil || response.Status != 200 {
		t.Fatalf("the client goes on: %v %v", response, err)
	}
}

func TestADeadlineCancelsTheCallAndADoneContextStartsNone(t *testing.T) {
	client := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	started := time.Now()
	_, err := client.DoContext(ctx, &Request{Method: "POST", Path: echo10s, Body: []byte(`{"k":1}`)})
	if took := time.Since(started); took > time.Second {
		t.Fatalf("took %v", took)
	}
	var failure *Error
	if !errors.As(err, &failure) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%#v", err)
	}
	counters, _ := client.Counters()
	_, err = client.DoContext(ctx, &Request{Method: "GET", Path: "/fake/v1/echo"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%#v", err)
	}
	if after, _ := client.Counters(); after.APICalls != counters.APICalls {
		t.Fatal("a call started on a done context")
	}
}

func TestManyCallsInFlightAndTheirCallbacks(t *testing.T) {
	client, err := New(gateway, appKey, appSecret, WithProxy(""), WithMaxConcurrentCalls(16))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var wait sync.WaitGroup
	failures := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wait.Add(1)
		go func() {
			defer wait.Done()
			response, err := client.RequestContext(context.Background(), "GET", "/fake/v1/echo?delayMs=20", "", nil)
			if err == nil && response.Status != 200 {
				err = errors.New(string(response.Body))
			}
			if err != nil {
				failures <- err
			}
		}()
	}
	wait.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	// A Reader part and an Output, called from the library's thread.
	photo := bytes.Repeat([]byte{7}, 200000)
	var sink bytes.Buffer
	response, err := client.DoContext(context.Background(), &Request{
		Method: "POST", Path: measurepoints,
		Parts: []Part{
			{Name: "enos-message", ContentType: "application/json", Data: []byte(`{"payload":[]}`)},
			{Name: "enos-file", FileName: "camera.jpg", Reader: bytes.NewReader(photo), Size: int64(len(photo))},
		},
		Output: &sink,
	})
	if err != nil || response.Status != 200 || sink.Len() == 0 {
		t.Fatalf("%v %v %d", response, err, sink.Len())
	}
	if _, err := New(gateway, appKey, appSecret, WithMaxConcurrentCalls(0)); err == nil {
		t.Fatal("0 calls at once accepted")
	}
}
