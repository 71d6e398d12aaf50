// The `openai` npm package (not ours) against a real tidelane-router and tidelane-worker
// started as child processes on free loopback ports: streaming and whole answers agree,
// models are listed, and a wrong key is an AuthenticationError.
// Usage: node openai_client_test.mjs BIN_DIR
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { randomBytes } from "node:crypto";
import assert from "node:assert/strict";
import OpenAI from "openai";

const bin = process.argv[2];
const work = mkdtempSync(join(tmpdir(), "tidelane-node-"));
const token = randomBytes(24).toString("hex");
const tokenFile = join(work, "token");
writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
const children = [];

// Starts a daemon and resolves with the fields of its ready line.
function start(args, prefix) {
  const child = spawn(args[0], args.slice(1), { stdio: ["ignore", "pipe", "ignore"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      if (!line.startsWith(prefix)) return reject(new Error(`${args[0]}: ${line}`));
      resolve(Object.fromEntries(line.split(" ").slice(2).map((kv) => kv.split("="))));
    });
    child.once("exit", (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
}

let failed = false;
try {
  const router = await start([join(bin, "tidelane-router"), "--grpc-listen", "127.0.0.1:0", "--http-listen",
    "127.0.0.1:0", "--auth-token-file", tokenFile, "--data-dir", join(work, "data")], "tidelane-router ready");
  await start([join(bin, "tidelane-worker"), "--router", router.grpc, "--auth-token-file", tokenFile,
    "--profile", "high", "--name", "node-worker"], "tidelane-worker ready");
  const client = new OpenAI({ apiKey: token, baseURL: `http://${router.http}/v1`, maxRetries: 0 });

  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ["tidelane-synthetic"]);

  const messages = [{ role: "user", content: "What does a tide router do?" }];
  const whole = await client.chat.completions.create({ model: "tidelane-synthetic", messages });
  const content = whole.choices[0].message.content;
  assert.ok(content.length > 0);
  assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + whole.usage.completion_tokens);

  const stream = await client.chat.completions.create({ model: "tidelane-synthetic", messages, stream: true });
  let streamed = "";
  let finish = null;
  for await (const chunk of stream) {
    streamed += chunk.choices[0]?.delta?.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(streamed, content);
  assert.equal(finish, whole.choices[0].finish_reason);

  const wrong = new OpenAI({ apiKey: "wrong", baseURL: `http://${router.http}/v1`, maxRetries: 0 });
  await assert.rejects(wrong.chat.completions.create({ model: "tidelane-synthetic", messages }),
    (e) => e instanceof OpenAI.AuthenticationError);
  await assert.rejects(client.chat.completions.create({ model: "gpt-none", messages }),
    (e) => e instanceof OpenAI.NotFoundError);
  console.log("ok: models, whole and streamed answers agree, wrong key and unknown model refused");
} catch (e) {
  failed = true;
  console.error("FAILED:", e);
} finally {
  for (const c of children) c.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
