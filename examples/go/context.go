package enostoken

// #include <stdlib.h>
// #include <enos_token.h>
// extern void enostokenCallFinished(void *user_data, enos_call *call);
import "C"

import (
	"context"
	"runtime"
	"runtime/cgo"
	"sync/atomic"
	"unsafe"
)

// inFlight is one call of DoContext: freed (the call, and the request's
// callbacks and strings) by whichever of the goroutine and the library's
// worker lets go of it last, since a cancelled call's worker may still be
// in a callback when the goroutine returns.
type inFlight struct {
	call     *C.enos_call
	built    *built
	finished chan struct{}
	owners   int32
	handle   cgo.Handle
	box      unsafe.Pointer
}

func (f *inFlight) letGo() {
	if atomic.AddInt32(&f.owners, -1) != 0 {
		return
	}
	C.enos_call_free(f.call)
	f.built.release()
	f.handle.Delete()
	C.free(f.box)
}

//export enostokenCallFinished
func enostokenCallFinished(userData unsafe.Pointer, _ *C.enos_call) {
	f := cgo.Handle(*(*C.uintptr_t)(userData)).Value().(*inFlight)
	close(f.finished)
	f.letGo()
}

// WithMaxConcurrentCalls caps the calls of DoContext and RequestContext that
// run at once (default 64); more wait in order. The connection pool keeps
// as many connections.
func WithMaxConcurrentCalls(calls uint32) Option {
	return func(o *building) C.enum_enos_status {
		return C.enos_client_builder_set_max_concurrent_calls(o.builder, C.uint32_t(calls))
	}
}

// DoContext is Do, with ctx: its cancellation or deadline cancels the call
// (a queued call never starts, a running call's connection is shut down)
// and DoContext returns at once with an *Error of status ENOS_ERR_CANCELLED
// whose Cause is ctx.Err() (errors.Is(err, context.Canceled) holds). The
// call runs on one of the library's threads, no OS thread of Go waits for
// it; a Reader part, an Output or a Progress function is called from that
// thread.
func (c *Client) DoContext(ctx context.Context, req *Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Status: 10, StatusName: "ENOS_ERR_CANCELLED",
			Message: req.Method + " " + req.Path + ": the context was done before the call started", Cause: err}
	}
	f, err := c.start(req)
	if err != nil {
		return nil, err
	}
	defer f.letGo()
	var cause error
	select {
	case <-f.finished:
	case <-ctx.Done():
		C.enos_call_cancel(f.call) // done at once; the worker lets go later
		cause = ctx.Err()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var response *C.enos_response
	if err := lastError(C.enos_call_wait(f.call, 0, &response)); err != nil {
		failure := err.(*Error)
		if cause != nil {
			// The worker may still run: its callbacks' state is not ours to read.
			failure.Cause = cause
		} else if f.built.state.failure != nil {
			failure.Cause = f.built.state.failure
		}
		return nil, failure
	}
	return readResponse(response), nil
}

// start sends req without waiting (enos_client_send_async).
func (c *Client) start(req *Request) (*inFlight, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := describe(req)
	if err != nil {
		return nil, err
	}
	f := &inFlight{built: b, finished: make(chan struct{}), owners: 2}
	f.handle = cgo.NewHandle(f)
	f.box = C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	*(*C.uintptr_t)(f.box) = C.uintptr_t(f.handle)
	status := C.enos_client_send_async(c.handle, b.request, C.enos_completion_callback(C.enostokenCallFinished),
		f.box, &f.call)
	if err := lastError(status); err != nil {
		b.release()
		f.handle.Delete()
		C.free(f.box)
		return nil, err
	}
	return f, nil
}

// RequestContext is Request with ctx, as DoContext.
func (c *Client) RequestContext(ctx context.Context, method, path, contentType string, body []byte) (*Response, error) {
	return c.DoContext(ctx, &Request{Method: method, Path: path, ContentType: contentType, Body: body})
}
