package enostoken

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const appKey, appSecret = "go-app-key", "go-app-secret-31aa"

var gateway string

// TestMain starts the fake gateway: ENOS_FAKE_GATEWAY, else a checkout's
// target/debug/enos-fake-gateway.
func TestMain(m *testing.M) {
	program := os.Getenv("ENOS_FAKE_GATEWAY")
	if program == "" {
		program = filepath.Join("..", "..", "target", "debug", "enos-fake-gateway")
	}
	fake := exec.Command(program, "--port", "0", "--max-seconds", "300", "--app", appKey)
	fake.Env = append(os.Environ(), "ENOS_FAKE_APP_SECRET="+appSecret)
	stdout, _ := fake.StdoutPipe()
	if err := fake.Start(); err != nil {
		panic("the fake gateway does not start (run cargo build --features fake-gateway): " + err.Error())
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	gateway = strings.TrimSpace(strings.TrimPrefix(line, "enos-fake-gateway listening on "))
	os.Setenv("NO_PROXY", "*")
	code := m.Run()
	fake.Process.Kill()
	fake.Wait()
	os.Exit(code)
}

func TestOneShotGetAndRefresh(t *testing.T) {
	token, err := GetAccessToken(gateway, appKey, appSecret)
	// Another test may have fetched the app's token a moment ago: the gateway
	// then hands out the same one, with what is left of its 2 hours.
	if err != nil || token.AccessToken == "" || token.Expire.Seconds() > 7200 || token.Expire.Seconds() < 7000 {
		t.Fatalf("get: %v %v", token, err)
	}
	refreshed, err := RefreshAccessToken(gateway, appKey, appSecret, token.AccessToken)
	if err != nil || refreshed.AccessToken == token.AccessToken {
		t.Fatalf("refresh: %v %v", refreshed, err)
	}
}

func TestClientManagedTokenHeadersAndInvalidate(t *testing.T) {
	client, err := New(gateway, appKey, appSecret, WithProxy(""), WithRetries(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	first, err := client.AccessToken()
	if err != nil {
		t.Fatal(err)
	}
	var wait sync.WaitGroup
	for i := 0; i < 8; i++ {
		wait.Add(1)
		go func() {
			defer wait.Done()
			if token, err := client.AccessToken(); err != nil || token != first {
				t.Errorf("goroutine: %q %v", token, err)
			}
		}()
	}
	wait.Wait()
	headers, err := client.AuthHeaders("b=2&a=1", []byte(`{"k":"v"}`))
	if err != nil || headers["apim-accesstoken"] != first || len(headers["apim-signature"]) != 64 {
		t.Fatalf("headers: %v %v", headers, err)
	}
	signature, err := SignRequest(first, "b=2&a=1", []byte(`{"k":"v"}`), 1, appSecret)
	if err != nil || len(signature) != 64 {
		t.Fatalf("signature: %q %v", signature, err)
	}
	if counters, err := client.Counters(); err != nil || counters.GetRequests != 1 || counters.CacheHits < 8 {
		t.Fatalf("counters: %+v %v", counters, err)
	}
	if err := client.Invalidate(first); err != nil {
		t.Fatal(err)
	}
	token, err := client.GetToken()
	if err != nil || token.AccessToken == "" {
		t.Fatalf("get: %v %v", token, err)
	}
	if refreshed, err := client.RefreshToken(token.AccessToken); err != nil || refreshed.AccessToken == token.AccessToken {
		t.Fatalf("refresh: %v %v", refreshed, err)
	}
}

func TestErrorsCarryTheirCodes(t *testing.T) {
	_, err := GetAccessToken(gateway, appKey, "not-the-secret")
	var enosError *Error
	if !errors.As(err, &enosError) {
		t.Fatalf("not an *Error: %v", err)
	}
	if enosError.StatusName != "ENOS_ERR_SERVICE" || enosError.ServiceStatus != 1003 || enosError.HTTPStatus != 200 {
		t.Fatalf("%+v", enosError)
	}
	if strings.Contains(enosError.Error(), "not-the-secret") {
		t.Fatal("the secret is in the message")
	}
	_, err = New("ftp://nowhere", appKey, appSecret)
	if !errors.As(err, &enosError) || enosError.StatusName != "ENOS_ERR_INVALID_ARGUMENT" {
		t.Fatalf("%v", err)
	}
	if Version() == "" {
		t.Fatal("no version")
	}
}

func TestRequestSignsSendsAndRenewsARetiredToken(t *testing.T) {
	client, err := New(gateway, appKey, appSecret, WithProxy(""))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	response, err := client.Request("POST", "/fake/v1/echo?orgId=o1", "application/json", []byte(`{"k":"v"}`))
	if err != nil || response.Status != 200 || !strings.Contains(string(response.Body), `"body":"{\"k\":\"v\"}"`) {
		t.Fatalf("request: %+v %v", response, err)
	}
	if response.Header("Content-Type") != "application/json;charset=UTF-8" ||
		response.ContentType != response.Header("content-type") {
		t.Fatalf("headers: %v, content type %q", response.Headers, response.ContentType)
	}
	sibling, err := New(gateway, appKey, appSecret, WithProxy(""))
	if err != nil {
		t.Fatal(err)
	}
	defer sibling.Close()
	current, _ := client.AccessToken()
	if _, err := sibling.RefreshToken(current); err != nil { // retires the client's token
		t.Fatal(err)
	}
	if response, err := client.Request("GET", "/fake/v1/echo", "", nil); err != nil || response.Status != 200 {
		t.Fatalf("after a sibling's refresh: %+v %v", response, err)
	}
	if counters, err := client.Counters(); err != nil || counters.APICalls != 2 || counters.TokenRenewals != 1 {
		t.Fatalf("counters: %+v %v", counters, err)
	}
	var enosError *Error
	if _, err := client.Request("GET", "http://elsewhere.example/", "", nil); !errors.As(err, &enosError) ||
		enosError.StatusName != "ENOS_ERR_INVALID_ARGUMENT" {
		t.Fatalf("an absolute URL: %v", err)
	}
}
