// Field names and values of a customer's changes, as words (timeline, consent history).
import { LANGUAGES, i18n } from '../../i18n/index.js'

/** A language code (zh-CN, en, fr) as its name: ours for the UI's languages, else the browser's. */
export function languageLabel(code) {
  if (!code) return ''
  const known = LANGUAGES.find((l) => l.code === code)
  if (known) return known.label
  try {
    return new Intl.DisplayNames([i18n.global.locale.value], { type: 'language' }).of(code) || code
  } catch {
    return code
  }
}

const FIELD_KEYS = {
  kind: 'kind',
  name: 'name',
  company: 'company',
  emails: 'emails',
  phones: 'phones',
  addresses: 'addresses',
  preferred_channel: 'preferredChannel',
  language: 'language',
  preferences: 'preferences',
  categories: 'categories',
  brands: 'brands',
  price_min: 'priceMin',
  price_max: 'priceMax',
  currency: 'currency',
  notes: 'notes',
  tags: 'tags',
  attributes: 'attributes',
  owner_id: 'owner',
  source: 'source',
  external_id: 'externalId',
  consents: 'consents',
  status: 'status',
  merged_into: 'mergedInto',
  source_id: 'mergedFrom',
  target_id: 'mergedInto',
  previous_owner_id: 'previousOwner',
  previous_status: 'previousStatus',
  set: 'attributesSet',
  unset: 'attributesUnset',
  channel: 'channel',
  granted: 'granted',
  method: 'method',
  note: 'note',
  add: 'tagsAdded',
  remove: 'tagsRemoved',
  added: 'tagsAdded',
  removed: 'tagsRemoved',
}

// Bookkeeping in event payloads that says nothing to a reader.
export const HIDDEN_CHANGE_KEYS = new Set(['merge_id', 'absorbed', 'recorded_by', 'customer_id', 'import_id'])

// Values that are a user's id (shown by name where possible) or another customer's (a link).
export const USER_FIELDS = new Set(['owner_id', 'previous_owner_id'])
export const CUSTOMER_FIELDS = new Set(['source_id', 'target_id', 'merged_into'])

export function fieldLabel(t, te, field) {
  const key = FIELD_KEYS[field] ? `customers.fields.${FIELD_KEYS[field]}` : null
  return key && te(key) ? t(key) : field
}

// Fields whose values are codes with words of their own.
const VALUE_GROUPS = {
  kind: 'kinds',
  status: 'statuses',
  previous_status: 'statuses',
  channel: 'channels',
  preferred_channel: 'channels',
  method: 'methods',
}

/** valueText, with codes (channel, status, …) in words. */
export function fieldValueText(t, te, field, value) {
  if (field === 'language' && typeof value === 'string') return languageLabel(value)
  const group = VALUE_GROUPS[field]
  if (group && typeof value === 'string' && te(`customers.${group}.${value}`)) return t(`customers.${group}.${value}`)
  return valueText(value)
}

export function valueText(value) {
  if (value === null || value === undefined || value === '') return '—'
  if (typeof value === 'boolean') return value ? '✓' : '✗'
  if (Array.isArray(value)) {
    if (!value.length) return '—'
    return value
      .map((v) => (v && typeof v === 'object' ? v.address || v.number || v.street || v.city || JSON.stringify(v) : String(v)))
      .join(', ')
  }
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}
