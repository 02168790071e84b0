// The customer form's state, and the request bodies built from it.
//
// Rows left empty are not sent, so the server's row numbers (errors like
// {"emails": {"1": {"address": [...]}}}) are mapped back to the form's rows through `rowIndex`.
import { DEFAULT_CURRENCY, formatMinor, minorDigits, parseMajor } from '../../utils/money.js'

export const ROW_LISTS = {
  emails: ['address', 'label', 'primary'],
  phones: ['number', 'label', 'primary'],
  addresses: ['label', 'country', 'region', 'city', 'district', 'street', 'postal_code', 'primary'],
}
const ADDRESS_TEXT = ['region', 'city', 'district', 'street', 'postal_code']
const SCALARS = ['kind', 'name', 'company', 'preferred_channel', 'language', 'source', 'external_id', 'owner_id']

export const emptyEmail = (primary = false) => ({ address: '', label: 'work', primary })
// A new row's label is a guess (`auto`) until the user picks one: a phone is a mobile unless
// its number is a fixed line; a company's address is its office, a person's their home.
export const emptyPhone = (primary = false) => ({ number: '', label: 'mobile', primary, auto: true })
export const addressLabelFor = (kind) => (kind === 'company' ? 'work' : 'home')
export const phoneLabelFor = (kind, landline) => (landline ? (kind === 'company' ? 'work' : 'home') : 'mobile')
export const emptyAddress = (primary = false, kind = 'person') => ({
  auto: true,
  label: addressLabelFor(kind),
  country: 'CN',
  region: '',
  city: '',
  district: '',
  street: '',
  postal_code: '',
  primary,
})

export function emptyForm() {
  return {
    kind: 'person',
    name: '',
    company: '',
    emails: [emptyEmail(true)],
    phones: [emptyPhone(true)],
    addresses: [],
    preferred_channel: '',
    language: '',
    categories: [],
    brands: [],
    price_min: '',
    price_max: '',
    currency: DEFAULT_CURRENCY,
    notes: '',
    tags: [],
    source: '',
    external_id: '',
    owner_id: '',
  }
}

/** The form showing a customer as read. */
export function formFromCustomer(c) {
  const prefs = c.preferences || {}
  const currency = prefs.currency || DEFAULT_CURRENCY
  const digits = minorDigits(currency)
  return {
    kind: c.kind || 'person',
    name: c.name || '',
    company: c.company || '',
    emails: (c.emails || []).map((e) => ({ address: e.address || '', label: e.label || '', primary: Boolean(e.primary) })),
    phones: (c.phones || []).map((p) => ({ number: p.number || '', label: p.label || '', primary: Boolean(p.primary) })),
    addresses: (c.addresses || []).map((a) => ({
      label: a.label || '',
      country: a.country || '',
      region: a.region || '',
      city: a.city || '',
      district: a.district || '',
      street: a.street || '',
      postal_code: a.postal_code || '',
      primary: Boolean(a.primary),
    })),
    preferred_channel: c.preferred_channel || '',
    language: c.language || '',
    categories: [...(prefs.categories || [])],
    brands: [...(prefs.brands || [])],
    price_min: formatMinor(prefs.price_min, digits),
    price_max: formatMinor(prefs.price_max, digits),
    currency,
    notes: prefs.notes || '',
    tags: [...(c.tags || [])],
    source: c.source || '',
    external_id: c.external_id || '',
    owner_id: c.owner_id || '',
  }
}

function rowIsEmpty(list, row) {
  if (list === 'emails') return !row.address.trim()
  if (list === 'phones') return !row.number.trim()
  return ADDRESS_TEXT.every((k) => !String(row[k] || '').trim())
}

function cleanRow(list, row) {
  const out = {}
  for (const key of ROW_LISTS[list]) {
    if (key === 'primary') out.primary = Boolean(row.primary)
    else {
      const value = String(row[key] ?? '').trim()
      if (value) out[key] = value
    }
  }
  return out
}

/**
 * { body, rowIndex, moneyErrors }: the customer as the API takes it (empty things left out),
 * which form row each sent row came from, and any amount that cannot be converted.
 */
export function buildBody(form) {
  const body = {}
  const rowIndex = {}
  const moneyErrors = {}
  for (const key of SCALARS) {
    const value = String(form[key] ?? '').trim()
    if (value) body[key] = value
  }
  for (const list of Object.keys(ROW_LISTS)) {
    const sent = []
    rowIndex[list] = []
    form[list].forEach((row, i) => {
      if (rowIsEmpty(list, row)) return
      sent.push(cleanRow(list, row))
      rowIndex[list].push(i)
    })
    // One primary per list: the first one kept when none (or the marked one was left empty).
    if (sent.length && !sent.some((r) => r.primary)) sent[0].primary = true
    if (sent.length) body[list] = sent
  }

  const prefs = {}
  const categories = form.categories.map((s) => s.trim()).filter(Boolean)
  const brands = form.brands.map((s) => s.trim()).filter(Boolean)
  if (categories.length) prefs.categories = categories
  if (brands.length) prefs.brands = brands
  const digits = minorDigits(form.currency)
  for (const key of ['price_min', 'price_max']) {
    const parsed = parseMajor(form[key], digits)
    if (parsed.error) moneyErrors[key] = { error: parsed.error, digits }
    else if (parsed.value !== null) prefs[key] = parsed.value
  }
  if (prefs.price_min !== undefined && prefs.price_max !== undefined && prefs.price_min > prefs.price_max) {
    moneyErrors.price_max = { error: 'order', digits }
  }
  if (prefs.price_min !== undefined || prefs.price_max !== undefined) prefs.currency = form.currency
  if (form.notes.trim()) prefs.notes = form.notes.trim()
  if (Object.keys(prefs).length) body.preferences = prefs

  const tags = form.tags.map((s) => s.trim()).filter(Boolean)
  if (tags.length) body.tags = tags
  return { body, rowIndex, moneyErrors }
}

const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)

/** The fields of `now` that differ from `before` (both from buildBody); a cleared one is null. */
export function changesBetween(before, now, { omit = [] } = {}) {
  const changes = {}
  const keys = new Set([...Object.keys(before), ...Object.keys(now)])
  for (const key of keys) {
    if (omit.includes(key) || same(before[key], now[key])) continue
    if (key === 'preferences') {
      const prefs = { ...(now.preferences || {}) }
      for (const k of Object.keys(before.preferences || {})) if (!(k in prefs)) prefs[k] = Array.isArray(before.preferences[k]) ? [] : null
      changes.preferences = prefs
    } else if (ROW_LISTS[key]) {
      changes[key] = now[key] || []
    } else {
      changes[key] = key in now ? now[key] : null
    }
  }
  return changes
}

/** Server errors about sent rows, renumbered as the form's rows. */
export function errorsForForm(errors, rowIndex) {
  if (!errors || typeof errors !== 'object') return errors
  const out = { ...errors }
  for (const list of Object.keys(ROW_LISTS)) {
    const value = errors[list]
    if (!value || typeof value !== 'object' || Array.isArray(value)) continue
    const renumbered = {}
    for (const [key, inner] of Object.entries(value)) {
      const formIndex = /^\d+$/.test(key) ? rowIndex[list]?.[Number(key)] : undefined
      renumbered[formIndex !== undefined ? String(formIndex) : key] = inner
    }
    out[list] = renumbered
  }
  return out
}
