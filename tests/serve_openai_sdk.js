// The official OpenAI Node SDK against `flopwise serve` (tests/test_serve.cpp runs it):
//   NODE_PATH=data/npm node tests/serve_openai_sdk.js http://127.0.0.1:PORT/v1
// Prints one JSON line: a greedy completion, the same streamed, four at once, the
// model list, and the status of a bad request.
const OpenAI = require("openai");

async function main() {
  const client = new OpenAI({ baseURL: process.argv[2], apiKey: "unused", maxRetries: 0, timeout: 60000 });
  const ask = { model: "run", prompt: "The jury", max_tokens: 16, temperature: 0 };
  const completion = (await client.completions.create(ask)).choices[0].text;
  let streamed = "", events = 0;
  for await (const chunk of await client.completions.create({ ...ask, stream: true })) {
    streamed += chunk.choices[0].text;
    events++;
  }
  const together = (await Promise.all([0, 1, 2, 3].map(() => client.completions.create(ask)))).map(
    (r) => r.choices[0].text);
  const models = (await client.models.list()).data.map((m) => m.id);
  let bad = 0;
  try {
    await client.completions.create({ ...ask, max_tokens: -1 });
  } catch (e) {
    bad = e.status;
  }
  console.log(JSON.stringify({ completion, streamed, stream_events: events, together, models,
                               bad_request_status: bad }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
