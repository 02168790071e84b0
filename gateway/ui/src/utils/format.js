// Dates are shown in the browser's own time zone, in the UI's language.
import { i18n } from '../i18n/index.js'

function locale() {
  return i18n.global.locale.value === 'zh-CN' ? 'zh-CN' : 'en'
}

function toDate(value) {
  if (!value) return null
  const date = value instanceof Date ? value : new Date(value)
  return Number.isNaN(date.getTime()) ? null : date
}

export function formatDateTime(value, { seconds = false } = {}) {
  const date = toDate(value)
  if (!date) return '—'
  return new Intl.DateTimeFormat(locale(), {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {}),
    hour12: false,
  }).format(date)
}

export function formatDate(value) {
  const date = toDate(value)
  if (!date) return '—'
  return new Intl.DateTimeFormat(locale(), { year: 'numeric', month: '2-digit', day: '2-digit' }).format(date)
}

export function formatRelative(value) {
  const date = toDate(value)
  if (!date) return ''
  const seconds = Math.round((date.getTime() - Date.now()) / 1000)
  const abs = Math.abs(seconds)
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' })
  if (abs < 60) return rtf.format(seconds, 'second')
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), 'minute')
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), 'hour')
  if (abs < 86400 * 30) return rtf.format(Math.round(seconds / 86400), 'day')
  if (abs < 86400 * 365) return rtf.format(Math.round(seconds / (86400 * 30)), 'month')
  return rtf.format(Math.round(seconds / (86400 * 365)), 'year')
}

/** "45 秒", "5 分钟", "2 小时" — rounded up, as a wait time. */
export function formatDuration(totalSeconds) {
  const { t } = i18n.global
  const s = Math.max(0, Math.ceil(Number(totalSeconds) || 0))
  if (s < 60) return t('time.seconds', { n: s }, s)
  if (s < 600 && s % 60 !== 0) return t('time.minutesSeconds', { m: Math.floor(s / 60), s: s % 60 })
  if (s < 3600) {
    const m = Math.ceil(s / 60)
    return t('time.minutes', { n: m }, m)
  }
  if (s < 86400) {
    const h = Math.round((s / 3600) * 10) / 10
    return t('time.hours', { n: h }, h === 1 ? 1 : 2)
  }
  const d = Math.round((s / 86400) * 10) / 10
  return t('time.days', { n: d }, d === 1 ? 1 : 2)
}

/**
 * A phone number as stored (E.164) in the groups people read it in: a Chinese mobile
 * +8613800138000 as "+86 138 0013 8000"; any other number as it is.
 */
export function formatPhone(e164) {
  if (!e164) return e164
  const mobile = /^\+86(1\d{2})(\d{4})(\d{4})$/.exec(String(e164))
  return mobile ? `+86 ${mobile[1]} ${mobile[2]} ${mobile[3]}` : String(e164)
}
