// Custom customer attributes: their definitions (key, label, type, options), fetched once per
// page load and shared, and how a value reads and is typed in.
import { ref } from 'vue'
import { customerAttributes } from '../api/customers.js'

export const ATTRIBUTE_TYPES = ['string', 'number', 'boolean', 'date', 'choice']

/** The definitions by key; empty until loaded. */
export const attributeDefinitions = ref({})
let pending = null

/** Loads the definitions (once; `force` again, after an admin changed them). */
export function loadAttributeDefinitions({ force = false } = {}) {
  if (pending && !force) return pending
  pending = customerAttributes
    .list()
    .then((page) => {
      attributeDefinitions.value = Object.fromEntries((page?.items || []).map((d) => [d.key, d]))
      return attributeDefinitions.value
    })
    .catch((error) => {
      pending = null
      throw error
    })
  return pending
}

/** The label an admin gave the attribute, else its key (a value left from a removed one). */
export function attributeLabel(key) {
  return attributeDefinitions.value[key]?.label || key
}

/** A stored value as text: yes/no for a boolean, the date as written, JSON for anything else. */
export function attributeText(t, value) {
  if (value === null || value === undefined || value === '') return '—'
  if (typeof value === 'boolean') return value ? t('attributes.yes') : t('attributes.no')
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}
