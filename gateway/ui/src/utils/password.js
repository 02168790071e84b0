// A strong random password for an admin to hand over (letters, digits, symbols; no look-alikes).
const LOWER = 'abcdefghijkmnpqrstuvwxyz'
const UPPER = 'ABCDEFGHJKLMNPQRSTUVWXYZ'
const DIGITS = '23456789'
const SYMBOLS = '!@#$%^&*-_=+?'

function pick(alphabet, count) {
  const values = new Uint32Array(count)
  crypto.getRandomValues(values)
  return Array.from(values, (v) => alphabet[v % alphabet.length])
}

export function generatePassword(length = 16) {
  const chars = [...pick(LOWER, 1), ...pick(UPPER, 1), ...pick(DIGITS, 1), ...pick(SYMBOLS, 1)]
  chars.push(...pick(LOWER + UPPER + DIGITS + SYMBOLS, length - chars.length))
  const order = new Uint32Array(chars.length)
  crypto.getRandomValues(order)
  return chars
    .map((c, i) => [order[i], c])
    .sort((a, b) => a[0] - b[0])
    .map(([, c]) => c)
    .join('')
}
