// Money as the API keeps it: integer minor units (fen, cents) with an ISO 4217 currency.
// Amounts typed in major units are converted from the string with integer arithmetic only,
// so no float ever reaches a request ("19.99" CNY → 1999, never 1998.9999…).

// Minor-unit digits of the currencies offered (ISO 4217).
export const CURRENCIES = [
  { code: 'CNY', digits: 2 },
  { code: 'HKD', digits: 2 },
  { code: 'TWD', digits: 2 },
  { code: 'USD', digits: 2 },
  { code: 'EUR', digits: 2 },
  { code: 'GBP', digits: 2 },
  { code: 'JPY', digits: 0 },
  { code: 'KRW', digits: 0 },
  { code: 'SGD', digits: 2 },
]

export const DEFAULT_CURRENCY = 'CNY'

/** Minor-unit digits of a currency: the table above, else what the browser knows (ISO 4217). */
export function minorDigits(currency) {
  const known = CURRENCIES.find((c) => c.code === currency)
  if (known) return known.digits
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits
  } catch {
    return 2
  }
}

/**
 * "1,299.5" with 2 digits → { value: 129950 }; "" → { value: null }; anything else →
 * { error: 'format' | 'precision' | 'range' }.
 */
export function parseMajor(text, digits) {
  const raw = String(text ?? '').trim().replace(/[,\s，]/g, '')
  if (raw === '') return { value: null }
  const match = /^(\d+)(?:\.(\d*))?$/.exec(raw)
  if (!match) return { error: 'format' }
  const whole = match[1]
  const fraction = (match[2] || '').replace(/0+$/, '')
  if (fraction.length > digits) return { error: 'precision' }
  const digitsText = (whole + fraction.padEnd(digits, '0')).replace(/^0+(?=\d)/, '')
  const value = Number(digitsText) // a string of decimal digits: exact while it is a safe integer
  if (!Number.isSafeInteger(value)) return { error: 'range' }
  return { value }
}

/** 129950 with 2 digits → "1299.50"; null → "". Integer arithmetic on the decimal string. */
export function formatMinor(value, digits) {
  if (value === null || value === undefined || value === '') return ''
  const negative = Number(value) < 0
  const text = String(Math.abs(Math.trunc(Number(value))))
  if (!digits) return (negative ? '-' : '') + text
  const padded = text.padStart(digits + 1, '0')
  const whole = padded.slice(0, padded.length - digits)
  const fraction = padded.slice(padded.length - digits)
  return `${negative ? '-' : ''}${whole}.${fraction}`
}

/** For display: 129950 CNY → "¥1,299.50" in the UI's language. */
export function formatMoney(value, currency, locale) {
  if (value === null || value === undefined) return '—'
  const digits = minorDigits(currency)
  const major = formatMinor(value, digits)
  try {
    return new Intl.NumberFormat(locale, {
      style: 'currency',
      currency: currency || DEFAULT_CURRENCY,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(major) // Intl formats decimal strings exactly
  } catch {
    return `${major} ${currency || ''}`.trim()
  }
}
