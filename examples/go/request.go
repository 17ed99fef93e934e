package enostoken

// #include <stdlib.h>
// #include <enos_token.h>
// extern int64_t enostokenReadPart(void *user_data, uint8_t *buffer, size_t capacity);
// extern int enostokenWriteOutput(void *user_data, uint8_t *data, size_t len);
// extern void enostokenReportProgress(void *user_data, uint64_t sent, uint64_t send_total,
//                                     uint64_t received, int64_t receive_total);
import "C"

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"runtime/cgo"
	"time"
	"unsafe"
)

// Part is one multipart/form-data part: Data, a File (a path, streamed from
// disk) or a Reader of exactly Size bytes (read as the call is sent). Every
// part carries its own Content-Length.
type Part struct {
	Name string
	// FileName goes into Content-Disposition ("" for a File: the path's base;
	// for Data or a Reader: none).
	FileName string
	// ContentType of the part ("": a plain field for Data and a Reader,
	// application/octet-stream for a File).
	ContentType string
	Data        []byte
	File        string
	Reader      io.Reader
	Size        int64
}

// Progress is how far a call has got.
type Progress struct {
	Sent, SendTotal, Received uint64
	// ReceiveTotal is -1 when the server did not say.
	ReceiveTotal int64
}

// Request describes an API call for Do: Method on Path (path and query
// relative to the gateway URL), other headers, one body (Body of
// ContentType, BodyFile streamed from disk, or Parts), where the answer goes
// and a time cap.
type Request struct {
	Method, Path string
	// Header holds other headers (Accept, Range, ...); never apim-*,
	// Content-Type or Content-Length.
	Header map[string]string
	// ContentType of Body or BodyFile ("": JSON for Body, binary for BodyFile).
	ContentType string
	Body        []byte
	BodyFile    string
	Parts       []Part
	// Output receives the answer's body as it arrives (Response.Body is then
	// empty); an *os.File is written directly. A GET resumes by itself when
	// the connection breaks mid-body.
	Output io.Writer
	// Progress is called at most every 100 ms and once at the end.
	Progress func(Progress)
	// Timeout caps the whole call, a streamed transfer included (0: none).
	Timeout time.Duration
}

// callbacks is what the C callbacks of one Do reach through their user_data.
type callbacks struct {
	readers  []io.Reader
	output   io.Writer
	progress func(Progress)
	// failure is the first error a callback met; it stopped the call.
	failure error
}

// target is what one callback's user_data names: the call's callbacks and,
// for a reader part, which reader.
type target struct {
	state *callbacks
	index int
}

// unbox reads the cgo.Handle that user_data holds (in C memory, so that C
// keeps a plain pointer).
func unbox(userData unsafe.Pointer) (*callbacks, int) {
	t := cgo.Handle(*(*C.uintptr_t)(userData)).Value().(target)
	return t.state, t.index
}

//export enostokenReadPart
func enostokenReadPart(userData unsafe.Pointer, buffer *C.uint8_t, capacity C.size_t) C.int64_t {
	state, index := unbox(userData)
	target := unsafe.Slice((*byte)(unsafe.Pointer(buffer)), int(capacity))
	for {
		n, err := state.readers[index].Read(target)
		if n > 0 {
			return C.int64_t(n)
		}
		if errors.Is(err, io.EOF) {
			return 0
		}
		if err != nil {
			if state.failure == nil {
				state.failure = err
			}
			return -1
		}
	}
}

//export enostokenWriteOutput
func enostokenWriteOutput(userData unsafe.Pointer, data *C.uint8_t, length C.size_t) C.int {
	state, _ := unbox(userData)
	if _, err := state.output.Write(unsafe.Slice((*byte)(unsafe.Pointer(data)), int(length))); err != nil {
		if state.failure == nil {
			state.failure = err
		}
		return 1
	}
	return 0
}

//export enostokenReportProgress
func enostokenReportProgress(userData unsafe.Pointer, sent, sendTotal, received C.uint64_t, receiveTotal C.int64_t) {
	state, _ := unbox(userData)
	state.progress(Progress{uint64(sent), uint64(sendTotal), uint64(received), int64(receiveTotal)})
}

// built is an enos_request with what its callbacks need, until release.
type built struct {
	request *C.enos_request
	state   *callbacks
	handles []cgo.Handle
	boxes   []unsafe.Pointer
	strings cstrings
}

func (b *built) release() {
	C.enos_request_free(b.request)
	for _, box := range b.boxes {
		C.free(box)
	}
	for _, handle := range b.handles {
		handle.Delete()
	}
	b.strings.free()
}

// box is user_data for a callback: a cgo.Handle in C memory naming the
// call's callbacks and `index` (a reader part's position).
func (b *built) box(index int) unsafe.Pointer {
	handle := cgo.NewHandle(target{b.state, index})
	b.handles = append(b.handles, handle)
	box := C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	*(*C.uintptr_t)(box) = C.uintptr_t(handle)
	b.boxes = append(b.boxes, box)
	return box
}

// describe turns req into an enos_request, on the caller's locked thread.
func describe(req *Request) (*built, error) {
	b := &built{state: &callbacks{}}
	s := &b.strings
	if err := lastError(C.enos_request_new(s.of(req.Method), s.of(req.Path), &b.request)); err != nil {
		b.strings.free()
		return nil, err
	}
	if err := b.fill(req); err != nil {
		b.release()
		return nil, err
	}
	return b, nil
}

func optional(s *cstrings, text string) *C.char {
	if text == "" {
		return nil
	}
	return s.of(text)
}

func (b *built) fill(req *Request) error {
	s := &b.strings
	for name, value := range req.Header {
		if err := lastError(C.enos_request_set_header(b.request, s.of(name), s.of(value))); err != nil {
			return err
		}
	}
	switch {
	case len(req.Parts) > 0:
		if req.Body != nil || req.BodyFile != "" {
			return &Error{Status: 2, StatusName: "ENOS_ERR_INVALID_ARGUMENT",
				Message: "a body (Body, BodyFile) and Parts are exclusive"}
		}
		for _, part := range req.Parts {
			if err := b.addPart(part); err != nil {
				return err
			}
		}
	case req.BodyFile != "":
		if err := lastError(C.enos_request_set_body_file(b.request, optional(s, req.ContentType),
			s.of(req.BodyFile))); err != nil {
			return err
		}
	case req.Body != nil:
		body, freeBody := cBody(req.Body)
		defer freeBody()
		if err := lastError(C.enos_request_set_body(b.request, optional(s, req.ContentType), body,
			C.size_t(len(req.Body)))); err != nil {
			return err
		}
	}
	if file, ok := req.Output.(*os.File); ok {
		if err := lastError(C.enos_request_set_output_fd(b.request, C.int(file.Fd()))); err != nil {
			return err
		}
	} else if req.Output != nil {
		b.state.output = req.Output
		if err := lastError(C.enos_request_set_output_callback(b.request,
			C.enos_write_callback(C.enostokenWriteOutput), b.box(0))); err != nil {
			return err
		}
	}
	if req.Progress != nil {
		b.state.progress = req.Progress
		if err := lastError(C.enos_request_set_progress_callback(b.request,
			C.enos_progress_callback(C.enostokenReportProgress), b.box(0))); err != nil {
			return err
		}
	}
	if req.Timeout > 0 {
		return lastError(C.enos_request_set_timeout_ms(b.request, C.uint64_t(req.Timeout.Milliseconds())))
	}
	return nil
}

func (b *built) addPart(part Part) error {
	s := &b.strings
	switch {
	case part.File != "":
		return lastError(C.enos_request_add_file_part(b.request, s.of(part.Name), optional(s, part.FileName),
			optional(s, part.ContentType), s.of(part.File)))
	case part.Reader != nil:
		b.state.readers = append(b.state.readers, part.Reader)
		return lastError(C.enos_request_add_callback_part(b.request, s.of(part.Name), optional(s, part.FileName),
			optional(s, part.ContentType), C.uint64_t(part.Size), C.enos_read_callback(C.enostokenReadPart),
			b.box(len(b.state.readers)-1)))
	case part.FileName != "":
		// Bytes with a file name: read from memory as the call is sent.
		return b.addPart(Part{Name: part.Name, FileName: part.FileName, ContentType: part.ContentType,
			Reader: bytes.NewReader(part.Data), Size: int64(len(part.Data))})
	default:
		data, freeData := cBody(part.Data)
		defer freeData()
		return lastError(C.enos_request_add_part(b.request, s.of(part.Name), optional(s, part.ContentType), data,
			C.size_t(len(part.Data))))
	}
}

// Do sends req: signed with the managed token over exactly the query sent
// (and the body, when it is JSON), files streamed from disk, the answer kept
// or streamed to req.Output, a refused token renewed and the call sent once
// more, a broken download resumed. Any HTTP status is a Response; failures
// are an *Error (ENOS_ERR_CANCELLED when a Reader or the Output failed: that
// error is wrapped, for errors.Is and errors.As).
func (c *Client) Do(req *Request) (*Response, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := describe(req)
	if err != nil {
		return nil, err
	}
	defer b.release()
	var response *C.enos_response
	status := C.enos_client_send(c.handle, b.request, &response)
	if err := lastError(status); err != nil {
		if failure := b.state.failure; failure != nil {
			err.(*Error).Cause = failure
		}
		return nil, err
	}
	return readResponse(response), nil
}
