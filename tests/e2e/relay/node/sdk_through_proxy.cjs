// The Node SDK (`openai` from npm) with baseURL set to the proxy: REST and a Realtime session
// through one client object. Prints one JSON line with what it saw; exits non-zero on any error.
const { OpenAI } = require('openai');
const { OpenAIRealtimeWS } = require('openai/realtime/ws');

async function main() {
  const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY, baseURL: process.env.BASE_URL, maxRetries: 0, timeout: 10000 });
  const models = [];
  for await (const model of client.models.list()) models.push(model.id);
  // A beta-shaped session config, as older WebRTC samples send it: the proxy repairs it.
  const secret = await client.realtime.clientSecrets.create({ session: { modalities: ['text'], voice: 'alloy' } });
  const rt = await OpenAIRealtimeWS.create(client, { model: 'gpt-realtime' });
  const events = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no session.updated in 10 s')), 10000);
    rt.on('error', (error) => { clearTimeout(timer); reject(error); });
    rt.on('event', (event) => {
      events.push(event.type);
      if (event.type === 'session.created') {
        rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'] } });
      } else if (event.type === 'session.updated') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  rt.close();
  console.log(JSON.stringify({ models, secret: { prefix: secret.value.slice(0, 3), type: secret.session.type }, events }));
}

main().catch((error) => { console.error(String(error && error.stack || error)); process.exit(1); });
