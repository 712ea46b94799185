// The conformance flow for the newest Go SDK (github.com/anthropics/anthropic-sdk-go/v2): client.Files,
// the GA dialect (Bearer auth, page/next_page cursors, ids, expires_in_seconds).
//
//	FILESAPI_BASE_URL=http://127.0.0.1:8000 FILESAPI_API_KEY=... go run ./ga_v2
//
// The workspace must start empty. Prints one `RESULT <operation> PASS|FAIL <detail>` line per operation.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	. "filesapi.local/conformance/internal/report"
)

const (
	sdkModule = "github.com/anthropics/anthropic-sdk-go/v2"
	unknownID = "file_011CNha8iCJcU1wXNR6q4V8w"
	pageSize  = 10
	total     = 25
)

var (
	pdf    = []byte("%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
	fileID = regexp.MustCompile(`^file_01[1-9A-HJ-NP-Za-km-z]{22}$`)
	ctx    = context.Background()
	// The last request the SDK sent, as evidence in FAIL details.
	lastRequest string
)

func recordRequests(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	lastRequest = r.Method + " " + r.URL.RequestURI()
	return next(r)
}

type upload struct {
	meta anthropic.FileMetadata
	data []byte
}

type flow struct {
	client  anthropic.Client
	baseURL string
	alive   []string // oldest first
	made    map[string]upload
	order   []string
	tmp     string
}

func (f *flow) upload(r io.Reader) anthropic.FileMetadata {
	return f.uploadWith(anthropic.FileUploadParams{File: r})
}

func (f *flow) uploadWith(params anthropic.FileUploadParams) anthropic.FileMetadata {
	meta, err := f.client.Files.Upload(ctx, params)
	NoErr(err, "Files.Upload")
	f.alive = append(f.alive, meta.ID)
	return *meta
}

func (f *flow) keep(kind string, meta anthropic.FileMetadata, data []byte) {
	f.made[kind] = upload{meta, data}
	f.order = append(f.order, kind)
}

func checkMeta(meta anthropic.FileMetadata, what string, filenames []string, mime string, data []byte) string {
	Must(string(meta.Type) == "file", "%s: type %q", what, meta.Type)
	Must(fileID.MatchString(meta.ID), "%s: id %q", what, meta.ID)
	found := false
	for _, name := range filenames {
		found = found || meta.Filename == name
	}
	Must(found, "%s: filename %q, expected one of %q", what, meta.Filename, filenames)
	Must(meta.MimeType == mime, "%s: mime_type %q, expected %q", what, meta.MimeType, mime)
	Must(meta.SizeBytes == int64(len(data)), "%s: size_bytes %d, expected %d", what, meta.SizeBytes, len(data))
	Must(meta.Downloadable, "%s: downloadable false", what)
	Must(time.Since(meta.CreatedAt).Abs() < 2*time.Minute, "%s: created_at %s is not about now", what, meta.CreatedAt)
	return fmt.Sprintf("%s (%s, %d B)", meta.Filename, meta.MimeType, meta.SizeBytes)
}

// expectAPIError: err must be the SDK's *anthropic.Error with the status and error.type.
func expectAPIError(err error, status int, errorType, what string) string {
	Must(err != nil, "%s: expected a %d error, but the call succeeded (request sent: %s)", what, status, lastRequest)
	var apiErr *anthropic.Error
	Must(errors.As(err, &apiErr), "%s: expected *anthropic.Error, got %T: %v", what, err, err)
	Must(apiErr.StatusCode == status, "%s: status %d, expected %d: %s", what, apiErr.StatusCode, status, apiErr.RawJSON())
	gotType, message, envelope := ErrorType(apiErr.RawJSON())
	Must(envelope == "error", "%s: error body %q", what, apiErr.RawJSON())
	Must(gotType == errorType, "%s: error.type %q, expected %q", what, gotType, errorType)
	Must(string(apiErr.Type()) == errorType, "%s: (*anthropic.Error).Type() %q, expected %q", what, apiErr.Type(), errorType)
	Must(message != "", "%s: no error.message", what)
	Must(strings.HasPrefix(apiErr.RequestID, "req_"), "%s: RequestID %q", what, apiErr.RequestID)
	return fmt.Sprintf("*anthropic.Error %d %s", status, errorType)
}

func (f *flow) listPage(params anthropic.FileListParams) ([]string, string) {
	page, err := f.client.Files.List(ctx, params)
	NoErr(err, "Files.List")
	ids := []string{}
	for _, item := range page.Data {
		ids = append(ids, item.ID)
	}
	return ids, page.NextPage
}

func main() {
	baseURL, apiKey := Env("FILESAPI_BASE_URL"), Env("FILESAPI_API_KEY")
	fmt.Printf("SDK go %s ga (%s, %s)\n", ModuleVersion(sdkModule), sdkModule, runtime.Version())
	f := &flow{
		client: anthropic.NewClient(option.WithAPIKey(apiKey), option.WithBaseURL(baseURL), option.WithMaxRetries(0),
			option.WithMiddleware(recordRequests)),
		baseURL: baseURL,
		made:    map[string]upload{},
	}
	tmp, err := os.MkdirTemp("", "filesapi-go-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	f.tmp = tmp

	existing, err := f.client.Files.List(ctx, anthropic.FileListParams{Limit: anthropic.Int(1000)})
	if err != nil || len(existing.Data) > 0 {
		detail := fmt.Sprintf("listing the workspace: %v", err)
		if err == nil {
			detail = fmt.Sprintf("workspace not empty: %d files", len(existing.Data))
		}
		fmt.Printf("RESULT setup FAIL %s\n", strings.Join(strings.Fields(detail), " "))
		os.Exit(1)
	}

	Op("upload_bytes", func() string {
		meta := f.upload(bytes.NewReader(pdf))
		f.keep("bytes", meta, pdf)
		// v2 sends an empty filename for unnamed readers: stored as unnamed + extension.
		return checkMeta(meta, "bytes.Reader", []string{"unnamed.pdf"}, "application/pdf", pdf)
	})

	Op("upload_path", func() string {
		data := []byte("# Notes\n\nUploaded from a path on disk.\n")
		p := filepath.Join(f.tmp, "notes.md")
		NoErr(os.WriteFile(p, data, 0o600), "write notes.md")
		file, err := os.Open(p)
		NoErr(err, "open notes.md")
		defer file.Close()
		meta := f.upload(file)
		f.keep("path", meta, data)
		return checkMeta(meta, "*os.File", []string{"notes.md"}, "text/markdown", data)
	})

	Op("upload_named", func() string {
		data := []byte(`{"answer": 42, "text": "café"}`)
		meta := f.upload(anthropic.File(bytes.NewReader(data), "data.json", "application/json"))
		f.keep("named", meta, data)
		big := make([]byte, 1_500_000)
		_, _ = rand.Read(big)
		big = append([]byte("\x00\x01BIN"), big...)
		bigMeta := f.upload(anthropic.File(bytes.NewReader(big), "blob.bin", "application/octet-stream"))
		f.keep("big", bigMeta, big)
		return checkMeta(meta, `anthropic.File(r, "data.json", "application/json")`, []string{"data.json"}, "application/json", data) +
			"; " + checkMeta(bigMeta, "1.5 MB blob.bin", []string{"blob.bin"}, "application/octet-stream", big)
	})

	Op("metadata", func() string {
		Must(len(f.order) > 0, "no upload succeeded")
		for _, kind := range f.order {
			up := f.made[kind]
			again, err := f.client.Files.GetMetadata(ctx, up.meta.ID, anthropic.FileGetMetadataParams{})
			NoErr(err, "GetMetadata "+kind)
			Must(SameJSON(again.RawJSON(), up.meta.RawJSON()), "GetMetadata(%s) %s != upload %s", kind, again.RawJSON(), up.meta.RawJSON())
			Must(again.CreatedAt.Equal(up.meta.CreatedAt) && again.Filename == up.meta.Filename, "GetMetadata(%s) fields differ", kind)
		}
		return "GetMetadata equals the upload response for " + strings.Join(f.order, ", ")
	})

	Op("download", func() string {
		Must(len(f.order) > 0, "no upload succeeded")
		sizes := []string{}
		for _, kind := range f.order {
			up := f.made[kind]
			resp, err := f.client.Files.Download(ctx, up.meta.ID, anthropic.FileDownloadParams{})
			NoErr(err, "Download "+kind)
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			NoErr(err, "read download "+kind)
			Must(bytes.Equal(got, up.data), "Download(%s): %d bytes differ from the %d sent", kind, len(got), len(up.data))
			ct := strings.Split(resp.Header.Get("Content-Type"), ";")[0]
			Must(ct == up.meta.MimeType, "Download(%s): content-type %q", kind, ct)
			sizes = append(sizes, fmt.Sprintf("%s %d B", kind, len(got)))
		}
		return "byte-identical: " + strings.Join(sizes, ", ")
	})

	Op("list_autopage", func() string {
		for i := len(f.alive); i < total; i++ {
			f.upload(anthropic.File(strings.NewReader(fmt.Sprintf("file %d", i)), fmt.Sprintf("page-%d.txt", i), "text/plain"))
		}
		want := Reversed(f.alive)
		seen := []string{}
		last := time.Now().Add(time.Hour)
		iter := f.client.Files.ListAutoPaging(ctx, anthropic.FileListParams{Limit: anthropic.Int(pageSize)})
		for iter.Next() {
			item := iter.Current()
			Must(!item.CreatedAt.After(last), "created_at not newest first at %s", item.ID)
			last = item.CreatedAt
			seen = append(seen, item.ID)
			Must(len(seen) <= 3*total, "auto-paging does not end")
		}
		NoErr(iter.Err(), "ListAutoPaging")
		Must(Equal(seen, want), "ListAutoPaging(limit %d) gave %d files %s, expected %d newest first %s", pageSize, len(seen), Short(seen), len(want), Short(want))
		return fmt.Sprintf("%d files over pages of %d, each once, newest first", len(seen), pageSize)
	})

	Op("list_manual", func() string {
		want := Reversed(f.alive)
		Must(len(want) == total, "expected %d files to page over, have %d", total, len(want))
		pages := [][]string{}
		params := anthropic.FileListParams{Limit: anthropic.Int(pageSize)}
		for {
			ids, next := f.listPage(params)
			pages = append(pages, ids)
			if next == "" {
				break
			}
			Must(strings.HasPrefix(next, "page_"), "next_page %q does not start with page_", next)
			Must(len(pages) < 10, "next_page never ends (last request sent: %s)", lastRequest)
			params.Page = anthropic.String(next)
		}
		Must(len(pages) == 3 && Equal(pages[0], want[:10]) && Equal(pages[1], want[10:20]) && Equal(pages[2], want[20:]),
			"page=next_page paging gave %d pages: %v", len(pages), pages)
		return "Page=NextPage: pages [10, 10, 5], next_page null on the last"
	})

	Op("list_ids", func() string {
		Must(len(f.alive) >= 2, "need two files")
		a, b := f.alive[0], f.alive[1]
		ids, next := f.listPage(anthropic.FileListParams{IDs: []string{a, unknownID, b, a}})
		Must(len(ids) == 2 && ((ids[0] == a && ids[1] == b) || (ids[0] == b && ids[1] == a)), "IDs [a, unknown, b, a] gave %s", Short(ids))
		Must(next == "", "IDs list has a next_page %q", next)
		return "IDs [a, unknown, b, a] -> a and b once each, one page"
	})

	Op("expires_in_seconds", func() string {
		meta := f.uploadWith(anthropic.FileUploadParams{
			File:             anthropic.File(strings.NewReader("expires"), "expiring.txt", "text/plain"),
			ExpiresInSeconds: anthropic.Int(3600),
		})
		Must(!meta.ExpiresAt.IsZero(), "expires_at is null: %s", meta.RawJSON())
		Must(meta.ExpiresAt.Sub(meta.CreatedAt) == time.Hour, "expires_at - created_at = %s, expected 1h", meta.ExpiresAt.Sub(meta.CreatedAt))
		again, err := f.client.Files.GetMetadata(ctx, meta.ID, anthropic.FileGetMetadataParams{})
		NoErr(err, "GetMetadata")
		Must(again.ExpiresAt.Equal(meta.ExpiresAt), "GetMetadata expires_at %s", again.ExpiresAt)
		plain, err := f.client.Files.GetMetadata(ctx, f.alive[0], anthropic.FileGetMetadataParams{})
		NoErr(err, "GetMetadata")
		Must(plain.ExpiresAt.IsZero(), "a file uploaded without expiry has expires_at %s", plain.ExpiresAt)
		_, err = f.client.Files.Upload(ctx, anthropic.FileUploadParams{
			File:             anthropic.File(strings.NewReader("x"), "x.txt", "text/plain"),
			ExpiresInSeconds: anthropic.Int(59),
		})
		expectAPIError(err, 400, "invalid_request_error", "Upload(ExpiresInSeconds 59)")
		return "expires_at = created_at + 1h; zero without; 59 -> 400 invalid_request_error"
	})

	Op("error_404", func() string {
		_, err := f.client.Files.GetMetadata(ctx, unknownID, anthropic.FileGetMetadataParams{})
		detail := expectAPIError(err, 404, "not_found_error", "GetMetadata(unknown)")
		_, err = f.client.Files.Download(ctx, unknownID, anthropic.FileDownloadParams{})
		expectAPIError(err, 404, "not_found_error", "Download(unknown)")
		_, err = f.client.Files.Delete(ctx, unknownID, anthropic.FileDeleteParams{})
		expectAPIError(err, 404, "not_found_error", "Delete(unknown)")
		_, err = f.client.Files.GetMetadata(ctx, "nonsense", anthropic.FileGetMetadataParams{})
		expectAPIError(err, 404, "not_found_error", "GetMetadata(nonsense)")
		return detail + " on GetMetadata, Download, Delete of an unknown id"
	})

	Op("error_400", func() string {
		_, err := f.client.Files.List(ctx, anthropic.FileListParams{Limit: anthropic.Int(1001)})
		detail := expectAPIError(err, 400, "invalid_request_error", "List(limit 1001)")
		_, err = f.client.Files.List(ctx, anthropic.FileListParams{Limit: anthropic.Int(-1)})
		expectAPIError(err, 400, "invalid_request_error", "List(limit -1)")
		_, err = f.client.Files.List(ctx, anthropic.FileListParams{Page: anthropic.String("page_not-a-cursor")})
		expectAPIError(err, 400, "invalid_request_error", "List(page bogus)")
		return detail + " for limit 1001 and -1 and a bogus page cursor"
	})

	Op("error_401", func() string {
		bad := anthropic.NewClient(option.WithAPIKey("sk-fapi-not-a-real-key"), option.WithBaseURL(baseURL), option.WithMaxRetries(0))
		_, err := bad.Files.List(ctx, anthropic.FileListParams{})
		detail := expectAPIError(err, 401, "authentication_error", "List with an unknown key")
		_, err = bad.Files.GetMetadata(ctx, unknownID, anthropic.FileGetMetadataParams{})
		expectAPIError(err, 401, "authentication_error", "GetMetadata with an unknown key")
		return detail + " for an unknown key"
	})

	Op("delete", func() string {
		Must(len(f.alive) > 0, "nothing to delete")
		n := len(f.alive)
		for _, id := range append([]string{}, f.alive...) {
			deleted, err := f.client.Files.Delete(ctx, id, anthropic.FileDeleteParams{})
			NoErr(err, "Delete "+id)
			Must(deleted.ID == id && string(deleted.Type) == "file_deleted", "Delete(%s) answered %s", id, deleted.RawJSON())
			f.alive = f.alive[1:]
		}
		if len(f.order) > 0 {
			_, err := f.client.Files.GetMetadata(ctx, f.made[f.order[0]].meta.ID, anthropic.FileGetMetadataParams{})
			expectAPIError(err, 404, "not_found_error", "GetMetadata after Delete")
		}
		ids, _ := f.listPage(anthropic.FileListParams{Limit: anthropic.Int(1000)})
		Must(len(ids) == 0, "%d files still listed after deleting all", len(ids))
		return fmt.Sprintf("%d files deleted ({id, type: file_deleted}); then 404; list empty", n)
	})

	Exit()
}
