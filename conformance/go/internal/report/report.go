// Package report prints the conformance programs' machine-readable lines:
//
//	SDK go <version> <dialect> (...)
//	RESULT <operation> PASS|FAIL <detail>
//
// and keeps the checks short. A panic inside an operation is reported as that operation's FAIL.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
)

// Failed is a check that did not hold.
type Failed struct{ Msg string }

func (f Failed) Error() string { return f.Msg }

// Check returns a Failed error with the message when cond is false.
func Check(cond bool, format string, args ...any) error {
	if cond {
		return nil
	}
	return Failed{fmt.Sprintf(format, args...)}
}

// Must panics with a Failed error when cond is false; Op turns it into a FAIL line.
func Must(cond bool, format string, args ...any) {
	if err := Check(cond, format, args...); err != nil {
		panic(err)
	}
}

// NoErr panics with a FAIL detail when err is not nil.
func NoErr(err error, what string) {
	if err != nil {
		panic(Failed{fmt.Sprintf("%s: unexpected error: %v", what, err)})
	}
}

var failures int

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600]
	}
	return s
}

// Op runs one operation and prints its RESULT line.
func Op(name string, fn func() string) {
	detail, ok := func() (detail string, ok bool) {
		defer func() {
			if r := recover(); r != nil {
				ok = false
				if f, isFailed := r.(Failed); isFailed {
					detail = f.Msg
				} else {
					detail = fmt.Sprintf("panic: %v\n%s", r, debug.Stack())
				}
			}
		}()
		return fn(), true
	}()
	status := "PASS"
	if !ok {
		status = "FAIL"
		failures++
	}
	if detail == "" {
		detail = "ok"
	}
	fmt.Printf("RESULT %s %s %s\n", name, status, oneLine(detail))
}

// Exit ends the program: 0 when every operation passed.
func Exit() {
	if failures > 0 {
		os.Exit(1)
	}
	os.Exit(0)
}

// ModuleVersion is the version of a dependency this binary was built with.
func ModuleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == path {
				if dep.Replace != nil {
					return dep.Replace.Version
				}
				return strings.TrimPrefix(dep.Version, "v")
			}
		}
	}
	return "unknown"
}

// SameJSON compares two JSON documents by value.
func SameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}

// ErrorType reads error.type out of an error envelope.
func ErrorType(raw string) (errorType string, message string, envelope string) {
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal([]byte(raw), &body) != nil {
		return "", "", ""
	}
	return body.Error.Type, body.Error.Message, body.Type
}

// Short prints the ends of ids.
func Short(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		if len(id) > 6 {
			id = id[len(id)-6:]
		}
		parts[i] = id
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Reversed returns a reversed copy.
func Reversed(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[len(ids)-1-i] = id
	}
	return out
}

// Equal compares string slices.
func Equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Env reads a required environment variable.
func Env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fmt.Fprintf(os.Stderr, "usage: FILESAPI_BASE_URL=... FILESAPI_API_KEY=... go run ./<program>; %s is not set\n", name)
		os.Exit(2)
	}
	return v
}
