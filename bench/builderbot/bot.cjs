// bench/builderbot/bot.cjs: the conversation of bench/flows/loadconv.flow written with
// BuilderBot (@builderbot/bot) and its Meta (WhatsApp Cloud API) provider, for the webhook
// load benchmark (bench/load.sh, docs/performance.md "Webhook load"). State lives in
// BuilderBot's MemoryDB (it has no Redis adapter).
//
// Environment: PORT (the webhook port), WHATSAPP_API_BASE (the fake Cloud API, e.g.
// http://127.0.0.1:8081: the provider's requests to https://graph.facebook.com are sent
// there instead, through an axios interceptor; the provider has no option for it),
// WHATSAPP_ACCESS_TOKEN, WHATSAPP_VERIFY_TOKEN, PHONE_NUMBER_ID, and BB_QUEUE: "stock"
// (default) keeps the provider's own queue as shipped (one task at a time, at least 100 ms
// apart, for incoming messages and sends alike); "unthrottled" lets it run 1000 tasks at
// once with no interval, to measure the framework without that limit.
'use strict'
const axios = require('axios') // the same instance the provider requires
const { createBot, createFlow, createProvider, addKeyword, MemoryDB } = require('@builderbot/bot')
const { MetaProvider } = require('@builderbot/provider-meta')

const GRAPH = 'https://graph.facebook.com'
const API = (process.env.WHATSAPP_API_BASE || '').replace(/\/+$/, '')
if (!API) throw new Error('WHATSAPP_API_BASE is required')
axios.interceptors.request.use((cfg) => {
  if (cfg.url && cfg.url.startsWith(GRAPH)) cfg.url = API + cfg.url.slice(GRAPH.length)
  return cfg
})

const sizes = ['Small', 'Medium', 'Large']
const colours = ['Red', 'Blue', 'Green']
const choose = 'Please choose one of the options.'

const order = addKeyword('order')
  .addAnswer('Which size would you like?', { capture: true, buttons: sizes.map((body) => ({ body })) },
    async (ctx, { state, fallBack }) => {
      if (!sizes.includes(ctx.body)) return fallBack(choose)
      await state.update({ size: ctx.body })
    })
  .addAnswer('Which colour?', { capture: true, buttons: colours.map((body) => ({ body })) },
    async (ctx, { state, fallBack }) => {
      if (!colours.includes(ctx.body)) return fallBack(choose)
      await state.update({ colour: ctx.body })
    })
  .addAnswer('Confirm the order?', { capture: true, buttons: [{ body: 'Confirm' }, { body: 'Cancel' }] },
    async (ctx, { state, fallBack, endFlow }) => {
      if (ctx.body === 'Confirm')
        return endFlow(`Order placed: a ${state.get('size')} ${state.get('colour')} shirt. Thank you!`)
      if (ctx.body === 'Cancel') return endFlow('Order cancelled.')
      return fallBack(choose)
    })

async function main() {
  const provider = createProvider(MetaProvider, {
    jwtToken: process.env.WHATSAPP_ACCESS_TOKEN || 'token',
    numberId: process.env.PHONE_NUMBER_ID || '106540352242922',
    verifyToken: process.env.WHATSAPP_VERIFY_TOKEN || 'verify',
    version: 'v21.0',
  })
  if (process.env.BB_QUEUE === 'unthrottled') {
    provider.queue.options.concurrent = 1000
    provider.queue.options.interval = 0
  }
  const { httpServer } = await createBot({
    flow: createFlow([order]),
    provider,
    database: new MemoryDB(),
  })
  httpServer(Number(process.env.PORT || 3008))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
