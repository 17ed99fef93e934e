package enostoken

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const measurepoints = "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1"

func downloadPath(size int) string {
	return fmt.Sprintf("/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/%d.bin", size)
}

// control calls the fake's control API (a POST with a body, else a GET).
func control(t *testing.T, path string, body string) map[string]any {
	t.Helper()
	var answer *http.Response
	var err error
	if body == "" {
		answer, err = http.Get(gateway + path)
	} else {
		answer, err = http.Post(gateway+path, "application/json", strings.NewReader(body))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer answer.Body.Close()
	var value map[string]any
	if err := json.NewDecoder(answer.Body).Decode(&value); err != nil {
		t.Fatal(err)
	}
	return value
}

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func newClient(t *testing.T) *Client {
	t.Helper()
	client, err := New(gateway, appKey, appSecret, WithProxy(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

func TestDoUploadsAMeasurementPointIntact(t *testing.T) {
	client := newClient(t)
	csv := filepath.Join(t.TempDir(), "readings.csv")
	csvData := bytes.Repeat([]byte("t,v\n"), 30000)
	if err := os.WriteFile(csv, csvData, 0o600); err != nil {
		t.Fatal(err)
	}
	photo := bytes.Repeat([]byte{1, 2, 3}, 100000)
	var last Progress
	response, err := client.Do(&Request{
		Method: "POST", Path: measurepoints,
		Parts: []Part{
			{Name: "enos-message", ContentType: "application/json", Data: []byte(`{"payload":[]}`)},
			{Name: "enos-file", File: csv},
			{Name: "enos-file", FileName: "camera.jpg", ContentType: "image/jpeg",
				Reader: bytes.NewReader(photo), Size: int64(len(photo))},
		},
		Progress: func(p Progress) { last = p },
	})
	if err != nil || response.Status != 200 {
		t.Fatalf("%v %+v", err, response)
	}
	var answer struct {
		Data struct {
			Parts []struct{ Name, Filename, Sha256 string }
		}
	}
	if err := json.Unmarshal(response.Body, &answer); err != nil {
		t.Fatal(err)
	}
	parts := answer.Data.Parts
	if len(parts) != 3 || parts[1].Filename != "readings.csv" || parts[1].Sha256 != sha(csvData) ||
		parts[2].Filename != "camera.jpg" || parts[2].Sha256 != sha(photo) {
		t.Fatalf("%+v", parts)
	}
	if last.Sent != last.SendTotal || last.SendTotal == 0 {
		t.Fatalf("progress: %+v", last)
	}
}

func TestASignatureOverAMultipartBodyIsRefused(t *testing.T) {
	client := newClient(t)
	body := "--b\r\nContent-Disposition: form-data; name=\"enos-message\"\r\nContent-Length: 2\r\n\r\n{}\r\n--b--\r\n"
	headers, err := client.AuthHeaders("action=postMeasurepoint&orgId=o1", []byte(body)) // the old, wrong way
	if err != nil {
		t.Fatal(err)
	}
	request, _ := http.NewRequest("POST", gateway+measurepoints, strings.NewReader(body))
	for name, value := range headers {
		request.Header.Set(name, value)
	}
	request.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	answer, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(answer.Body)
	answer.Body.Close()
	if answer.StatusCode != 401 || !strings.Contains(string(text), "signature mismatch") {
		t.Fatalf("%d %s", answer.StatusCode, text)
	}
}

func TestDoStreamsA50MiBDownloadToAFileAndAWriterAndResumesACutOne(t *testing.T) {
	client := newClient(t)
	size := 50 * 1024 * 1024
	expected := control(t, fmt.Sprintf("/fake/control/file-digest?fileUri=enos-connect://fake/%d.bin", size), "")["sha256"]
	file, err := os.Create(filepath.Join(t.TempDir(), "out.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	response, err := client.Do(&Request{Method: "GET", Path: downloadPath(size), Output: file})
	if err != nil || response.Status != 200 || len(response.Body) != 0 {
		t.Fatalf("%v %+v", err, response)
	}
	written, _ := os.ReadFile(file.Name())
	if sha(written) != expected {
		t.Fatal("the file differs")
	}
	control(t, "/fake/control/fault", `{"fault":"cut-download","bytes":1048576}`)
	hasher := sha256.New()
	response, err = client.Do(&Request{Method: "GET", Path: downloadPath(size), Output: hasher})
	if err != nil || response.Attempts != 2 || hex.EncodeToString(hasher.Sum(nil)) != expected {
		t.Fatalf("resumed: %v %+v", err, response)
	}
}

type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestAWriterThatFailsCancelsTheCallWithItsError(t *testing.T) {
	client := newClient(t)
	_, err := client.Do(&Request{Method: "GET", Path: downloadPath(100000), Output: failingWriter{}})
	var e *Error
	if !errors.As(err, &e) || e.StatusName != "ENOS_ERR_CANCELLED" || !errors.Is(err, errDiskFull) {
		t.Fatalf("%v", err)
	}
	if response, err := client.Request("GET", "/fake/v1/echo", "", nil); err != nil || response.Status != 200 {
		t.Fatalf("the client goes on: %v", err)
	}
}

func TestBadHeadersMissingFilesAndMixedBodiesAreRefusedByName(t *testing.T) {
	client := newClient(t)
	for _, c := range []struct {
		request Request
		says    string
	}{
		{Request{Method: "GET", Path: "/fake/v1/echo", Header: map[string]string{"apim-signature": "x"}}, "apim-signature"},
		{Request{Method: "GET", Path: "/fake/v1/echo", Header: map[string]string{"X-Split": "a\r\nb"}}, "CR, LF or NUL"},
		{Request{Method: "POST", Path: measurepoints, Parts: []Part{{Name: "enos-file", File: "/nonexistent/fw.bin"}}}, "/nonexistent/fw.bin"},
		{Request{Method: "POST", Path: measurepoints, Body: []byte("{}"), Parts: []Part{{Name: "a", Data: []byte("b")}}}, "exclusive"},
	} {
		_, err := client.Do(&c.request)
		var e *Error
		if !errors.As(err, &e) || e.StatusName != "ENOS_ERR_INVALID_ARGUMENT" || !strings.Contains(e.Message, c.says) {
			t.Errorf("%+v: %v", c.request, err)
		}
	}
}

func TestAnOutageIsRetriedAndTheResponseSaysSo(t *testing.T) {
	control(t, "/fake/control/outage", `{"status":503,"times":2}`)
	client, err := New(gateway, appKey, appSecret, WithProxy(""), WithRetries(2, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	response, err := client.Request("GET", "/fake/v1/echo", "", nil)
	if err != nil || response.Status != 200 || response.Attempts != 3 || response.RequestID != "" {
		t.Fatalf("%v %+v", err, response)
	}
	if counters, _ := client.Counters(); counters.APIRetries != 2 {
		t.Fatalf("%+v", counters)
	}
	upload, err := client.Do(&Request{Method: "POST", Path: measurepoints,
		Parts: []Part{{Name: "enos-message", ContentType: "application/json", Data: []byte("{}")}}})
	if err != nil || !strings.HasPrefix(upload.RequestID, "fake-") {
		t.Fatalf("%v %+v", err, upload)
	}
}
