// What the import page knows about the files it sends: the columns the server accepts (English
// or Chinese header), the modes, the match fields, and an example file made in the browser.
import { saveBlob } from '../api/client.js'

export const IMPORT_ROLES = ['admin', 'manager']
export const IMPORT_MODES = ['create', 'update', 'upsert']
export const MATCH_FIELDS = ['email', 'phone', 'external_id']
export const IMPORT_STATUSES = ['running', 'completed', 'failed', 'reverted']
export const ACCEPTED_EXTENSIONS = ['.csv', '.xlsx']

/** Accepted columns: the English header, its Chinese alias, and a value for the example file. */
export const IMPORT_COLUMNS = [
  { key: 'name', zh: '姓名', example: ['王小明', '上海星辰贸易有限公司'] },
  { key: 'email', zh: '邮箱', example: ['wang.xiaoming@example.com', 'contact@example.cn'] },
  { key: 'phone', zh: '手机', example: ['13812345678', '+8613912345678'] },
  { key: 'company', zh: '公司', example: ['', '上海星辰贸易有限公司'] },
  { key: 'tags', zh: '标签', example: ['VIP;展会客户', '经销商'] },
  { key: 'external_id', zh: '外部编号', example: ['ERP-0001', 'ERP-0002'] },
  { key: 'source', zh: '来源', example: ['展会', '官网'] },
  { key: 'language', zh: '语言', example: ['中文', 'en'] },
  { key: 'preferred_channel', zh: '首选渠道', example: ['微信', '邮件'] },
  { key: 'country', zh: '国家', example: ['中国', 'CN'] },
  { key: 'region', zh: '省份', example: ['广东省', '上海市'] },
  { key: 'city', zh: '城市', example: ['深圳市', '上海市'] },
  { key: 'district', zh: '区县', example: ['南山区', '浦东新区'] },
  { key: 'street', zh: '地址', example: ['科技园南路 88 号', '世纪大道 100 号'] },
  { key: 'postal_code', zh: '邮编', example: ['518057', '200120'] },
  { key: 'notes', zh: '备注', example: ['老客户介绍', ''] },
  { key: 'kind', zh: '类型', example: ['个人', '公司'] },
]

function csvCell(value) {
  const text = String(value ?? '')
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

/** The example file: UTF-8 with a BOM (so that Excel reads the Chinese), Chinese headers. */
export function templateCsv() {
  const lines = [IMPORT_COLUMNS.map((c) => c.zh)]
  for (let i = 0; i < IMPORT_COLUMNS[0].example.length; i++) lines.push(IMPORT_COLUMNS.map((c) => c.example[i]))
  return '\ufeff' + lines.map((line) => line.map(csvCell).join(',')).join('\r\n') + '\r\n'
}

export function downloadTemplate(filename = 'customers-import-template.csv') {
  saveBlob(new Blob([templateCsv()], { type: 'text/csv;charset=utf-8' }), filename)
}

/** A random (v4) UUID: crypto.randomUUID where the page is a secure context, else built by hand. */
export function newImportId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  bytes[6] = (bytes[6] & 0x0f) | 0x40
  bytes[8] = (bytes[8] & 0x3f) | 0x80
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export function hasAcceptedExtension(name) {
  const lower = String(name || '').toLowerCase()
  return ACCEPTED_EXTENSIONS.some((ext) => lower.endsWith(ext))
}

export const importStatusType = (status) =>
  ({ running: 'primary', completed: 'success', failed: 'danger', reverted: 'info' })[status] || 'info'

/** Share of the rows done, 0–100 (a finished import is 100 even with no rows). */
export function importPercent(item) {
  if (!item) return 0
  if (item.status && item.status !== 'running') return 100
  const total = Number(item.total_rows) || 0
  if (!total) return 0
  return Math.min(100, Math.floor(((Number(item.processed_rows) || 0) * 100) / total))
}

/**
 * revert_conflicts as a list, whatever its shape: a count, a list of ids, or a list of
 * objects ({customer_id, reason, …}). Each entry: { id, text }.
 */
export function conflictList(value) {
  if (value === null || value === undefined) return { count: 0, items: [] }
  if (typeof value === 'number') return { count: value, items: [] }
  if (Array.isArray(value)) {
    const items = value.map((entry) => {
      if (entry && typeof entry === 'object') {
        const id = entry.customer_id ?? entry.id ?? null
        const rest = Object.entries(entry)
          .filter(([k]) => k !== 'customer_id' && k !== 'id')
          .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
        return { id: id === null ? null : String(id), text: rest.join('; ') }
      }
      return { id: String(entry), text: '' }
    })
    return { count: items.length, items }
  }
  if (typeof value === 'object') {
    const items = Object.entries(value).map(([id, v]) => ({ id, text: Array.isArray(v) ? v.join(' ') : typeof v === 'object' ? JSON.stringify(v) : String(v) }))
    return { count: items.length, items }
  }
  return { count: 0, items: [] }
}
