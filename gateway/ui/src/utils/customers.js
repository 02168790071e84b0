// What the customer pages share: the fixed vocabularies they offer, and who may do what
// (the gateway enforces the same rules; the UI only leaves out what would be refused).
import { session } from '../api/session.js'

export const CUSTOMER_ROLES = ['admin', 'manager', 'sales', 'analyst']
export const CUSTOMER_WRITE_ROLES = ['admin', 'manager', 'sales']

export const KINDS = ['person', 'company']
export const STATUSES = ['active', 'archived', 'merged', 'erased']
// 'all' is the API's word for every status (no status filter means only active ones).
export const FILTER_STATUSES = ['active', 'archived', 'all']
export const CHANNELS = ['email', 'phone', 'sms', 'wechat', 'mail']
export const PREFERRED_CHANNELS = [...CHANNELS, 'none']
export const CONSENT_METHODS = ['web_form', 'phone', 'paper', 'email', 'in_person', 'import', 'api', 'other']
export const EMAIL_LABELS = ['work', 'home', 'other']
export const PHONE_LABELS = ['mobile', 'work', 'home', 'other']
export const ADDRESS_LABELS = ['home', 'work', 'billing', 'shipping', 'other']
export const CUSTOMER_LANGUAGES = ['zh-CN', 'en', 'zh-TW', 'ja', 'ko']
export const SORTS = ['-created_at', 'created_at', 'name', '-name', '-updated_at', 'updated_at']

const role = () => session.user?.role

export const can = {
  write: () => CUSTOMER_WRITE_ROLES.includes(role()),
  assign: () => ['admin', 'manager'].includes(role()),
  merge: () => ['admin', 'manager'].includes(role()),
  import: () => ['admin', 'manager'].includes(role()),
  erase: () => role() === 'admin',
  privacyExport: () => ['admin', 'manager'].includes(role()),
  filterByOwner: () => ['admin', 'manager'].includes(role()),
  seeContacts: () => role() !== 'analyst',
}

export function primaryOf(list, key) {
  if (!Array.isArray(list) || !list.length) return ''
  const entry = list.find((e) => e.primary) || list[0]
  return entry?.[key] || ''
}

export const customerPath = (id, suffix = '') => `/customers/${encodeURIComponent(id)}${suffix}`

/** A translated word for a code from a vocabulary, or the code itself when unknown. */
export function termOf(t, te, group, code) {
  if (code === null || code === undefined || code === '') return ''
  const key = `customers.${group}.${code}`
  return te(key) ? t(key) : String(code)
}
