package enostoken

import (
	"strings"
	"sync"
	"testing"
)

func TestWithLoggerSeesTheClientsLinesAndNeverTheToken(t *testing.T) {
	var mutex sync.Mutex
	var lines []string
	client, err := New(gateway, appKey, appSecret, WithProxy(""), WithLogger(func(level LogLevel, line string) {
		mutex.Lock()
		defer mutex.Unlock()
		lines = append(lines, level.String()+": "+line)
	}))
	if err != nil {
		t.Fatal(err)
	}
	token, err := client.AccessToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Request("GET", "/fake/v1/echo", "", nil); err != nil {
		t.Fatal(err)
	}
	counters, _ := client.Counters()
	client.Close()
	mutex.Lock()
	defer mutex.Unlock()
	joined := strings.Join(lines, "\n")
	if !strings.Contains(joined, "info: Get succeeded") || strings.Contains(joined, token) {
		t.Fatalf("%s", joined)
	}
	if counters.APICalls != 1 || counters.GetRequests != 1 {
		t.Fatalf("%+v", counters)
	}
}
