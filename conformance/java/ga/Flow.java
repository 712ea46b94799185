// The conformance flow for the newest Java SDK (com.anthropic:anthropic-java 3.x, pinned in pom.xml):
// client.files(), the GA dialect (page/next_page cursors, ids, expires_in_seconds).
//
//   FILESAPI_BASE_URL=... FILESAPI_API_KEY=... java -cp "$(cat target/classpath.txt)" Flow.java
//
// The workspace must start empty. Prints `SDK ...` once, then one `RESULT <operation> PASS|FAIL <detail>`
// line per operation; exit status 0 when every operation passed.

import com.anthropic.client.AnthropicClient;
import com.anthropic.client.okhttp.AnthropicOkHttpClient;
import com.anthropic.core.MultipartField;
import com.anthropic.core.http.HttpResponse;
import com.anthropic.errors.AnthropicServiceException;
import com.anthropic.errors.BadRequestException;
import com.anthropic.errors.NotFoundException;
import com.anthropic.errors.UnauthorizedException;
import com.anthropic.models.files.DeletedFile;
import com.anthropic.models.files.FileListPage;
import com.anthropic.models.files.FileListParams;
import com.anthropic.models.files.FileMetadata;
import com.anthropic.models.files.FileUploadParams;
import com.anthropic.services.blocking.FileService;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class Flow {
    static final String DIALECT = "ga";
    static final String UNKNOWN_ID = "file_011CNha8iCJcU1wXNR6q4V8w";
    static final int PAGE = 10;
    static final int TOTAL = 25;
    static final byte[] PDF = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
            .getBytes(StandardCharsets.ISO_8859_1);
    static final Pattern FILE_ID = Pattern.compile("file_01[1-9A-HJ-NP-Za-km-z]{22}");

    // -- reporting

    static final class CheckFailed extends RuntimeException {
        CheckFailed(String message) { super(message); }
    }

    static void check(boolean cond, String message) {
        if (!cond) throw new CheckFailed(message);
    }

    interface Step { String run() throws Exception; }

    static int failures = 0;

    static String oneLine(String s) {
        s = String.valueOf(s).replaceAll("\\s+", " ").trim();
        return s.length() > 600 ? s.substring(0, 600) : s;
    }

    static void op(String name, Step step) {
        String status = "PASS";
        String detail;
        try {
            detail = step.run();
        } catch (CheckFailed e) {
            status = "FAIL";
            detail = e.getMessage();
        } catch (AnthropicServiceException e) {
            status = "FAIL";
            detail = "unexpected " + e.getClass().getSimpleName() + " " + e.statusCode() + ": " + e.body();
        } catch (Throwable t) {
            status = "FAIL";
            StringBuilder sb = new StringBuilder("unexpected " + t);
            for (StackTraceElement el : Arrays.copyOf(t.getStackTrace(), Math.min(4, t.getStackTrace().length))) {
                sb.append(" at ").append(el);
            }
            detail = sb.toString();
        }
        if (status.equals("FAIL")) failures++;
        System.out.println("RESULT " + name + " " + status + " " + oneLine(detail == null ? "ok" : detail));
        System.out.flush();
    }

    static String sdkVersion() {
        String where = String.valueOf(AnthropicClient.class.getProtectionDomain().getCodeSource().getLocation());
        Matcher m = Pattern.compile("anthropic-java-core-([0-9][^/]*)\\.jar").matcher(where);
        return m.find() ? m.group(1) : "unknown (" + where + ")";
    }

    static String shortIds(List<String> ids) {
        List<String> out = new ArrayList<>();
        for (String id : ids) out.add(id.substring(Math.max(0, id.length() - 6)));
        return out.toString();
    }

    static String expectError(Class<? extends AnthropicServiceException> cls, int status, String errorType,
                              Step call, String what) throws Exception {
        try {
            call.run();
        } catch (AnthropicServiceException e) {
            check(e.getClass() == cls, what + ": expected exactly " + cls.getSimpleName() + ", got "
                    + e.getClass().getSimpleName() + " (" + e.statusCode() + ")");
            check(e.statusCode() == status, what + ": status " + e.statusCode() + ", expected " + status);
            @SuppressWarnings("unchecked")
            Map<String, Object> body = e.body().convert(Map.class);
            check(body != null && "error".equals(body.get("type")), what + ": error body " + e.body());
            @SuppressWarnings("unchecked")
            Map<String, Object> error = (Map<String, Object>) body.get("error");
            check(error != null && errorType.equals(error.get("type")),
                    what + ": error.type " + (error == null ? null : error.get("type")) + ", expected " + errorType);
            check(error.get("message") instanceof String && !((String) error.get("message")).isEmpty(),
                    what + ": no error.message");
            List<String> rid = e.headers().values("request-id");
            check(!rid.isEmpty() && rid.get(0).startsWith("req_"), what + ": request-id " + rid);
            return cls.getSimpleName() + " " + status + " " + errorType;
        }
        throw new CheckFailed(what + ": expected " + cls.getSimpleName() + ", but the call succeeded");
    }

    // -- the flow

    static final class Made {
        final FileMetadata meta;
        final byte[] data;
        Made(FileMetadata meta, byte[] data) { this.meta = meta; this.data = data; }
    }

    final FileService files;
    final String baseUrl;
    final List<String> alive = new ArrayList<>(); // oldest first
    final Map<String, Made> made = new LinkedHashMap<>();
    final Path tmp;

    Flow(AnthropicClient client, String baseUrl, Path tmp) {
        this.files = client.files();
        this.baseUrl = baseUrl;
        this.tmp = tmp;
    }

    FileMetadata upload(FileUploadParams params) {
        FileMetadata meta = files.upload(params);
        alive.add(meta.id());
        return meta;
    }

    List<String> newestFirst() {
        List<String> out = new ArrayList<>(alive);
        Collections.reverse(out);
        return out;
    }

    static String checkMeta(FileMetadata meta, String what, List<String> filenames, String mime, byte[] data) {
        check("file".equals(meta._type().convert(String.class)), what + ": type " + meta._type());
        check(FILE_ID.matcher(meta.id()).matches(), what + ": id " + meta.id());
        check(filenames.contains(meta.filename()), what + ": filename " + meta.filename() + ", expected one of " + filenames);
        check(mime.equals(meta.mimeType()), what + ": mime_type " + meta.mimeType() + ", expected " + mime);
        check(meta.sizeBytes() == data.length, what + ": size_bytes " + meta.sizeBytes() + ", expected " + data.length);
        check(meta.downloadable().orElse(false), what + ": downloadable " + meta.downloadable());
        check(Duration.between(meta.createdAt(), OffsetDateTime.now()).abs().toMinutes() < 2,
                what + ": created_at " + meta.createdAt() + " is not about now");
        return meta.filename() + " (" + meta.mimeType() + ", " + meta.sizeBytes() + " B)";
    }

    static List<String> ids(List<FileMetadata> items) {
        List<String> out = new ArrayList<>();
        for (FileMetadata f : items) out.add(f.id());
        return out;
    }

    void run(AnthropicClient badClient) {
        op("upload_bytes", () -> {
            FileMetadata meta = upload(FileUploadParams.builder().file(PDF).build());
            made.put("bytes", new Made(meta, PDF));
            return checkMeta(meta, "file(byte[])", List.of("unnamed.pdf"), "application/pdf", PDF);
        });

        op("upload_path", () -> {
            byte[] data = "# Notes\n\nUploaded from a path on disk.\n".getBytes(StandardCharsets.UTF_8);
            Path p = tmp.resolve("notes.md");
            Files.write(p, data);
            FileMetadata meta = upload(FileUploadParams.builder().file(p).build());
            made.put("path", new Made(meta, data));
            return checkMeta(meta, "file(Path)", List.of("notes.md"), "text/markdown", data);
        });

        op("upload_named", () -> {
            byte[] data = "{\"answer\": 42, \"text\": \"caf\u00e9\"}".getBytes(StandardCharsets.UTF_8);
            FileMetadata meta = upload(FileUploadParams.builder()
                    .file(MultipartField.<InputStream>builder().value(new ByteArrayInputStream(data))
                            .filename("data.json").contentType("application/json").build())
                    .build());
            made.put("named", new Made(meta, data));
            byte[] big = new byte[1_500_005];
            new Random(7).nextBytes(big);
            FileMetadata bigMeta = upload(FileUploadParams.builder()
                    .file(MultipartField.<InputStream>builder().value(new ByteArrayInputStream(big))
                            .filename("blob.bin").contentType("application/octet-stream").build())
                    .build());
            made.put("big", new Made(bigMeta, big));
            return checkMeta(meta, "MultipartField(filename data.json, application/json)", List.of("data.json"), "application/json", data)
                    + "; " + checkMeta(bigMeta, "1.5 MB blob.bin", List.of("blob.bin"), "application/octet-stream", big);
        });

        op("metadata", () -> {
            check(!made.isEmpty(), "no upload succeeded");
            for (Map.Entry<String, Made> e : made.entrySet()) {
                FileMetadata again = files.retrieveMetadata(e.getValue().meta.id());
                check(again.equals(e.getValue().meta),
                        "retrieveMetadata(" + e.getKey() + ") " + again + " != upload " + e.getValue().meta);
            }
            return "retrieveMetadata equals the upload response for " + String.join(", ", made.keySet());
        });

        op("download", () -> {
            check(!made.isEmpty(), "no upload succeeded");
            List<String> sizes = new ArrayList<>();
            for (Map.Entry<String, Made> e : made.entrySet()) {
                try (HttpResponse r = files.download(e.getValue().meta.id())) {
                    byte[] got = r.body().readAllBytes();
                    check(Arrays.equals(got, e.getValue().data), "download(" + e.getKey() + "): " + got.length
                            + " bytes differ from the " + e.getValue().data.length + " sent");
                    List<String> ct = r.headers().values("Content-Type");
                    check(!ct.isEmpty() && ct.get(0).split(";")[0].equals(e.getValue().meta.mimeType()),
                            "download(" + e.getKey() + "): content-type " + ct);
                    sizes.add(e.getKey() + " " + got.length + " B");
                }
            }
            return "byte-identical: " + String.join(", ", sizes);
        });

        op("list_autopage", () -> {
            for (int i = alive.size(); i < TOTAL; i++) {
                upload(FileUploadParams.builder().file(MultipartField.<InputStream>builder()
                        .value(new ByteArrayInputStream(("file " + i).getBytes(StandardCharsets.UTF_8)))
                        .filename("page-" + i + ".txt").contentType("text/plain").build()).build());
            }
            List<String> want = newestFirst();
            List<String> seen = new ArrayList<>();
            OffsetDateTime last = null;
            for (FileMetadata f : files.list(FileListParams.builder().limit(PAGE).build()).autoPager()) {
                check(last == null || !f.createdAt().isAfter(last), "created_at not newest first at " + f.id());
                last = f.createdAt();
                seen.add(f.id());
                check(seen.size() <= 3 * TOTAL, "auto-paging does not end");
            }
            check(seen.equals(want), "autoPager() over list(limit " + PAGE + ") gave " + seen.size() + " files "
                    + shortIds(seen) + ", expected " + want.size() + " newest first " + shortIds(want));
            return seen.size() + " files over pages of " + PAGE + ", each once, newest first";
        });

        op("list_manual", () -> {
            List<String> want = newestFirst();
            check(want.size() == TOTAL, "expected " + TOTAL + " files to page over, have " + want.size());
            List<List<String>> pages = new ArrayList<>();
            FileListPage p = files.list(FileListParams.builder().limit(PAGE).build());
            while (true) {
                pages.add(ids(p.data()));
                Optional<String> next = p.nextPageRaw();
                if (next.isEmpty()) break;
                check(next.get().startsWith("page_"), "next_page " + next.get() + " does not start with page_");
                check(pages.size() < 10, "next_page never ends");
                p = files.list(FileListParams.builder().limit(PAGE).page(next.get()).build());
            }
            check(!p.hasNextPage(), "the last page says hasNextPage()");
            check(pages.equals(List.of(want.subList(0, 10), want.subList(10, 20), want.subList(20, 25))),
                    "page=nextPage paging gave " + pages.size() + " pages: " + pages);
            return "page(nextPageRaw): pages [10, 10, 5], next_page null on the last";
        });

        op("list_ids", () -> {
            check(alive.size() >= 2, "need two files");
            String a = alive.get(0), b = alive.get(1);
            FileListPage p = files.list(FileListParams.builder().ids(List.of(a, UNKNOWN_ID, b, a)).build());
            List<String> got = new ArrayList<>(ids(p.data()));
            Collections.sort(got);
            List<String> want = new ArrayList<>(List.of(a, b));
            Collections.sort(want);
            check(got.equals(want), "ids [a, unknown, b, a] gave " + shortIds(got));
            check(p.nextPageRaw().isEmpty() && !p.hasNextPage(), "ids list is not a single page");
            return "ids [a, unknown, b, a] -> a and b once each, one page";
        });

        op("expires_in_seconds", () -> {
            FileMetadata meta = upload(FileUploadParams.builder().file(MultipartField.<InputStream>builder()
                    .value(new ByteArrayInputStream("expires".getBytes(StandardCharsets.UTF_8)))
                    .filename("expiring.txt").contentType("text/plain").build()).expiresInSeconds(3600L).build());
            check(meta.expiresAt().isPresent(), "expires_at missing: " + meta);
            Duration delta = Duration.between(meta.createdAt(), meta.expiresAt().get());
            check(delta.equals(Duration.ofHours(1)), "expires_at - created_at = " + delta + ", expected PT1H");
            check(files.retrieveMetadata(meta.id()).expiresAt().equals(meta.expiresAt()), "retrieveMetadata expires_at differs");
            check(files.retrieveMetadata(alive.get(0)).expiresAt().isEmpty(), "a file uploaded without expiry has an expires_at");
            expectError(BadRequestException.class, 400, "invalid_request_error",
                    () -> upload(FileUploadParams.builder().file("x".getBytes(StandardCharsets.UTF_8))
                            .expiresInSeconds(59L).build()).toString(), "expiresInSeconds(59)");
            return "expires_at = created_at + 1h; empty without; 59 -> BadRequestException";
        });

        op("error_404", () -> {
            String d = expectError(NotFoundException.class, 404, "not_found_error",
                    () -> files.retrieveMetadata(UNKNOWN_ID).toString(), "retrieveMetadata(unknown)");
            expectError(NotFoundException.class, 404, "not_found_error",
                    () -> { files.download(UNKNOWN_ID).close(); return ""; }, "download(unknown)");
            expectError(NotFoundException.class, 404, "not_found_error",
                    () -> files.delete(UNKNOWN_ID).toString(), "delete(unknown)");
            expectError(NotFoundException.class, 404, "not_found_error",
                    () -> files.retrieveMetadata("nonsense").toString(), "retrieveMetadata(nonsense)");
            return d + " on retrieveMetadata, download, delete of an unknown id";
        });

        op("error_400", () -> {
            String d = expectError(BadRequestException.class, 400, "invalid_request_error",
                    () -> files.list(FileListParams.builder().limit(0).build()).toString(), "list(limit 0)");
            expectError(BadRequestException.class, 400, "invalid_request_error",
                    () -> files.list(FileListParams.builder().limit(1001).build()).toString(), "list(limit 1001)");
            expectError(BadRequestException.class, 400, "invalid_request_error",
                    () -> files.list(FileListParams.builder().page("page_not-a-cursor").build()).toString(), "list(page bogus)");
            return d + " for limit 0 and 1001 and a bogus page cursor";
        });

        op("error_401", () -> {
            FileService bad = badClient.files();
            String d = expectError(UnauthorizedException.class, 401, "authentication_error",
                    () -> bad.list().toString(), "list with an unknown key");
            expectError(UnauthorizedException.class, 401, "authentication_error",
                    () -> bad.retrieveMetadata(UNKNOWN_ID).toString(), "retrieveMetadata with an unknown key");
            return d + " for an unknown key";
        });

        op("delete", () -> {
            check(!alive.isEmpty(), "nothing to delete");
            int n = alive.size();
            for (String id : new ArrayList<>(alive)) {
                DeletedFile d = files.delete(id);
                String type = d.type().map(t -> t.asString()).orElse(null);
                check(d.id().equals(id) && "file_deleted".equals(type), "delete(" + id + ") answered " + d);
                alive.remove(id);
            }
            if (!made.isEmpty()) {
                String gone = made.values().iterator().next().meta.id();
                expectError(NotFoundException.class, 404, "not_found_error",
                        () -> files.retrieveMetadata(gone).toString(), "retrieveMetadata after delete");
            }
            FileListPage left = files.list(FileListParams.builder().limit(1000).build());
            check(left.data().isEmpty(), left.data().size() + " files still listed after deleting all");
            return n + " files deleted ({id, type: file_deleted}); then NotFoundException; list empty";
        });
    }

    public static void main(String[] args) throws Exception {
        String baseUrl = System.getenv("FILESAPI_BASE_URL");
        String apiKey = System.getenv("FILESAPI_API_KEY");
        if (baseUrl == null || apiKey == null) {
            System.err.println("usage: FILESAPI_BASE_URL=... FILESAPI_API_KEY=... java -cp CLASSPATH Flow.java");
            System.exit(2);
        }
        System.out.println("SDK java " + sdkVersion() + " " + DIALECT + " (Java " + System.getProperty("java.version") + ")");
        AnthropicClient client = AnthropicOkHttpClient.builder().apiKey(apiKey).baseUrl(baseUrl).maxRetries(0)
                .timeout(Duration.ofSeconds(60)).build();
        AnthropicClient bad = AnthropicOkHttpClient.builder().apiKey("sk-fapi-not-a-real-key").baseUrl(baseUrl)
                .maxRetries(0).timeout(Duration.ofSeconds(60)).build();
        Path tmp = Files.createTempDirectory("filesapi-java-");
        try {
            List<FileMetadata> existing;
            try {
                existing = client.files().list(FileListParams.builder().limit(1000).build()).data();
            } catch (RuntimeException e) {
                System.out.println("RESULT setup FAIL listing the workspace: " + oneLine(e.toString()));
                System.exit(1);
                return;
            }
            if (!existing.isEmpty()) {
                System.out.println("RESULT setup FAIL workspace not empty: " + existing.size() + " files");
                System.exit(1);
            }
            new Flow(client, baseUrl, tmp).run(bad);
        } finally {
            for (Path p : Files.list(tmp).toList()) Files.deleteIfExists(p);
            Files.deleteIfExists(tmp);
            client.close();
            bad.close();
        }
        System.exit(failures == 0 ? 0 : 1);
    }
}
