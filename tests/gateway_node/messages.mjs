// The official TypeScript SDK through the filesapi Messages gateway: uploads, then each operation
// named on the command line with file blocks; prints one JSON object of results.
// node messages.mjs SDK_ENTRY BASE_URL KEY op...   (ops: create stream count beta error)
const [sdkEntry, baseURL, apiKey, ...ops] = process.argv.slice(2);
const { default: Anthropic, toFile } = await import(sdkEntry);
const client = new Anthropic({ apiKey, baseURL, maxRetries: 0 });
const pdf = Buffer.concat([Buffer.from("%PDF-1.7\n"), Buffer.alloc(3000, 7), Buffer.from("\n%%EOF\n")]);
const text = Buffer.from("TypeScript notes: é ✓ \"quoted\"\n");
const pdfFile = await client.beta.files.upload({ file: await toFile(pdf, "ts.pdf", { type: "application/pdf" }) });
const textFile = await client.beta.files.upload({ file: await toFile(text, "ts.txt", { type: "text/plain" }) });
const content = [
  { type: "document", source: { type: "file", file_id: pdfFile.id }, citations: { enabled: true } },
  { type: "document", source: { type: "file", file_id: textFile.id } },
  { type: "text", text: process.env.GATEWAY_PROMPT || "hi" },
];
const messages = [{ role: "user", content }];
const out = { files: { pdf: [pdfFile.id, pdf.toString("base64")], text: [textFile.id, text.toString("utf8")] } };
for (const op of ops) {
  if (op === "create") {
    out.create = await client.messages.create({ model: "claude-test", max_tokens: 5, messages });
  } else if (op === "stream") {
    const stream = client.messages.stream({ model: "claude-test", max_tokens: 5, messages });
    let events = 0;
    stream.on("streamEvent", () => { events += 1; });
    out.stream = { message: await stream.finalMessage(), events };
  } else if (op === "count") {
    out.count = await client.messages.countTokens({ model: "claude-test", messages });
  } else if (op === "beta") {
    out.beta = await client.beta.messages.create({
      model: "claude-test", max_tokens: 5, messages, betas: ["files-api-2025-04-14"],
    });
  } else if (op === "error") {
    const gone = "file_011CNha8iCJcU1wXNR6q4V8w";
    try {
      await client.messages.create({ model: "claude-test", max_tokens: 5,
        messages: [{ role: "user", content: [{ type: "document", source: { type: "file", file_id: gone } }] }] });
      out.error = null;
    } catch (err) {
      out.error = { name: err.constructor.name, status: err.status, type: err.error?.error?.type };
    }
  }
}
console.log(JSON.stringify(out));
