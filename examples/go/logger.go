package enostoken

// #include <stdlib.h>
// #include <enos_token.h>
// extern void enostokenLog(enos_log_level level, char *message, void *user_data);
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// LogLevel is how much a log line matters (enos_log_level).
type LogLevel int

// The levels, as in enos_token.h.
const (
	LogError LogLevel = 1
	LogWarn  LogLevel = 2
	LogInfo  LogLevel = 3
	LogDebug LogLevel = 4
)

// String is the level's name: "error", "warn", "info" or "debug".
func (l LogLevel) String() string {
	switch l {
	case LogError:
		return "error"
	case LogWarn:
		return "warn"
	case LogInfo:
		return "info"
	default:
		return "debug"
	}
}

//export enostokenLog
func enostokenLog(level C.enos_log_level, message *C.char, userData unsafe.Pointer) {
	log := cgo.Handle(*(*C.uintptr_t)(userData)).Value().(func(LogLevel, string))
	log(LogLevel(level), C.GoString(message))
}

// WithLogger sends the client's log lines (a token fetched or refused, each
// retry and its wait, one line per API call at LogDebug; never a token or
// the secret) to log, from any goroutine or library thread that uses the
// client, possibly several at once: log must be safe for that. With the
// standard library's log/slog (Go 1.21):
//
//	enostoken.WithLogger(func(level enostoken.LogLevel, line string) {
//		slog.Info(line, "level", level.String())
//	})
func WithLogger(log func(level LogLevel, line string)) Option {
	return func(o *building) C.enum_enos_status {
		handle := cgo.NewHandle(log)
		box := C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
		*(*C.uintptr_t)(box) = C.uintptr_t(handle)
		// Kept until Close: the client calls it as long as it lives.
		o.keep = append(o.keep, func() {
			handle.Delete()
			C.free(box)
		})
		return C.enos_client_builder_set_log_callback(o.builder, C.enos_log_callback(C.enostokenLog), box)
	}
}
