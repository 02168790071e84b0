// What the order pages share: statuses, who may do what (the gateway and the orders service
// enforce the same rules; the UI only leaves out what would be refused), and the totals rule.
import { session } from '../../api/session.js'

export const ORDER_ROLES = ['admin', 'manager', 'sales', 'analyst']
export const ORDER_WRITE_ROLES = ['admin', 'manager', 'sales']
export const PRODUCT_ADMIN_ROLES = ['admin', 'manager']
export const STATUSES = ['placed', 'partially_paid', 'paid', 'fulfilled', 'completed', 'cancelled', 'returned']
export const ACTIONS = ['fulfil', 'complete', 'cancel', 'return']

const role = () => session.user?.role

export const can = {
  write: () => ORDER_WRITE_ROLES.includes(role()),
  manageProducts: () => PRODUCT_ADMIN_ROLES.includes(role()),
  import: () => PRODUCT_ADMIN_ROLES.includes(role()),
}

export const STATUS_TYPES = {
  placed: 'info',
  partially_paid: 'warning',
  paid: 'success',
  fulfilled: 'primary',
  completed: 'success',
  cancelled: 'danger',
  returned: 'danger',
}

export const orderPath = (id) => `/orders/${encodeURIComponent(id)}`

/**
 * The orders service's one rounding rule, for the preview while an order is written (the
 * server computes the totals that count): line total = quantity × unit price − line discount;
 * tax = round half to even of (subtotal − order discount) × rate / 10000 (rate in basis
 * points); total = subtotal − order discount + tax. Integers only.
 */
export function roundHalfEven(numerator, denominator) {
  let quotient = Math.floor(numerator / denominator)
  const remainder = numerator - quotient * denominator
  const twice = 2 * remainder
  if (twice > denominator || (twice === denominator && quotient % 2 !== 0)) quotient += 1
  return quotient
}

export function previewTotals(lines, orderDiscount = 0, taxRate = 0) {
  const priced = lines.map((line) => ({
    ...line,
    line_total: Math.max(0, line.quantity * line.unit_price - (line.line_discount || 0)),
  }))
  const subtotal = priced.reduce((sum, line) => sum + line.line_total, 0)
  const taxable = Math.max(0, subtotal - (orderDiscount || 0))
  const tax = roundHalfEven(taxable * (taxRate || 0), 10000)
  return { lines: priced, subtotal, tax, total: taxable + tax }
}

/**
 * Statuses of an order that was paid in full: what its total is short of then is money
 * refunded (a concession), not money owed.
 */
export const SETTLED = ['paid', 'fulfilled', 'completed']

/** Statuses of an order that is off: nothing is due on it, whatever its total or payments. */
export const CLOSED = ['cancelled', 'returned']

/** An address form's values for the API: blank fields as null; null when only the country is given. */
export function cleanAddress(address) {
  if (!address) return null
  const clean = {}
  for (const [key, value] of Object.entries(address)) {
    const text = typeof value === 'string' ? value.trim() : value
    clean[key] = text === '' ? null : text
  }
  // The country is filled in by itself (CN): an address with nothing else is no address.
  const given = Object.entries(clean).some(([key, value]) => key !== 'country' && value !== null && value !== undefined)
  return given ? clean : null
}

/** An address for reading: its parts joined. */
export function addressText(address) {
  if (!address) return ''
  return [address.recipient, address.phone, [address.country, address.region, address.city, address.district, address.street].filter(Boolean).join(' '), address.postal_code]
    .filter(Boolean)
    .join(' · ')
}
