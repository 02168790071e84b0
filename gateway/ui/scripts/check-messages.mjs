// Compiles every message of every locale with vue-i18n's own message compiler and lists the ones
// it refuses (an unescaped `@`, `{`, `}` or `|` …), which otherwise only fail when a page shows them.
// Also lists keys present in one locale and missing from the other.
// Usage: node scripts/check-messages.mjs   (exit status 1 when anything is wrong)
import { baseCompile } from '@intlify/message-compiler'

// The locale files plus the messages modules merge into at load (serverText, payments, analytics).
await import('vue') // before the stub below: Vue looks for a real DOM when it loads
globalThis.document ??= { documentElement: {} }
globalThis.localStorage ??= { getItem: () => null, setItem: () => {} }
const { i18n } = await import('../src/i18n/index.js')
await import('../src/utils/serverText.js')
await import('../src/components/payments/messages.js')
await import('../src/components/analytics/messages.js')
const locales = Object.fromEntries(i18n.global.availableLocales.map((l) => [l, i18n.global.getLocaleMessage(l)]))
const problems = []

function walk(node, path, visit) {
  if (typeof node === 'string') return visit(path, node)
  if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) walk(value, path ? `${path}.${key}` : key, visit)
  }
}

const keys = {}
for (const [locale, messages] of Object.entries(locales)) {
  keys[locale] = new Set()
  walk(messages, '', (path, message) => {
    keys[locale].add(path)
    const errors = []
    baseCompile(message, { onError: (error) => errors.push(error.message), location: false })
    for (const error of errors) problems.push(`${locale} ${path}: ${error}: ${JSON.stringify(message)}`)
  })
}
for (const [locale, own] of Object.entries(keys)) {
  for (const [other, theirs] of Object.entries(keys)) {
    if (other === locale) continue
    for (const key of own) if (!theirs.has(key)) problems.push(`${other} lacks ${key} (in ${locale})`)
  }
}

if (problems.length) {
  console.error(problems.join('\n'))
  process.exit(1)
}
console.log(`ok: ${Object.values(keys).reduce((n, s) => n + s.size, 0)} messages compile`)
