// The server's own words (field messages of marshmallow and the services, "order not found",
// payment failure reasons) in the UI's language. The API answers in English; a message we know
// is said in our words, anything else is shown as the server wrote it.
import { i18n } from '../i18n/index.js'

const en = {
  serverText: {
    required: 'This field is required.',
    null: 'This field may not be empty.',
    unknownField: 'Unknown field.',
    email: 'Not a valid e-mail address.',
    notPhone: 'Not a phone number.',
    phoneIn: 'Not a valid phone number in {region}; use international form, like {example}.',
    phone: 'Not a valid phone number; use international form, like {example}.',
    e164: 'Must be a phone number in international form, like {example}.',
    samePhone: 'Same number as entry {n}.',
    uuid: 'Not a valid id.',
    integer: 'Must be a whole number.',
    number: 'Must be a number.',
    string: 'Must be text.',
    boolean: 'Must be yes or no.',
    date: 'Not a valid date.',
    datetime: 'Not a valid date and time.',
    url: 'Not a valid URL.',
    list: 'Must be a list.',
    minLength: 'Must be at least {n} characters long.',
    maxLength: 'Must be at most {n} characters long.',
    lengthBetween: 'Must be between {min} and {max} characters long.',
    oneOf: 'Must be one of: {choices}.',
    atLeast: 'Must be {n} or more.',
    atMost: 'Must be {n} or less.',
    between: 'Must be between {min} and {max}.',
    zeroOrMore: 'Must be 0 or more.',
    dateLike: 'Must be a date, like {example}.',
    cardNumber: 'Not a valid card number.',
    cardExpired: 'The card has expired.',
    notFound: {
      order: 'Order not found.',
      customer: 'Customer not found.',
      product: 'Product not found.',
      payment: 'Payment not found.',
      import: 'Import not found.',
      user: 'User not found.',
      other: 'Not found.',
    },
  },
  failureReasons: {
    card_declined: 'the card was declined',
    insufficient_funds: 'insufficient funds',
    unknown_test_card: 'not a sandbox test card',
    processing_error: 'the provider had a processing error',
    expired_card: 'the card has expired',
    declined: 'declined',
    requested: 'cancelled on request',
    expired: 'the payment expired',
  },
}

const zh = {
  serverText: {
    required: '此项为必填项。',
    null: '此项不能为空。',
    unknownField: '未知字段。',
    email: '邮箱地址格式不正确。',
    notPhone: '不是电话号码。',
    phoneIn: '不是有效的{region}电话号码；请使用国际格式，例如 {example}。',
    phone: '不是有效的电话号码；请使用国际格式，例如 {example}。',
    e164: '请使用国际格式的电话号码，例如 {example}。',
    samePhone: '与第 {n} 个号码相同。',
    uuid: '不是有效的编号。',
    integer: '必须是整数。',
    number: '必须是数字。',
    string: '必须是文本。',
    boolean: '必须是“是”或“否”。',
    date: '日期格式不正确。',
    datetime: '日期时间格式不正确。',
    url: '网址格式不正确。',
    list: '必须是列表。',
    minLength: '至少 {n} 个字符。',
    maxLength: '最多 {n} 个字符。',
    lengthBetween: '长度须在 {min} 到 {max} 个字符之间。',
    oneOf: '必须是以下之一：{choices}。',
    atLeast: '必须大于或等于 {n}。',
    atMost: '必须小于或等于 {n}。',
    between: '必须在 {min} 到 {max} 之间。',
    zeroOrMore: '必须大于或等于 0。',
    dateLike: '请输入日期，例如 {example}。',
    cardNumber: '卡号无效。',
    cardExpired: '此卡已过期。',
    notFound: {
      order: '未找到该订单。',
      customer: '未找到该客户。',
      product: '未找到该商品。',
      payment: '未找到该支付记录。',
      import: '未找到该导入记录。',
      user: '未找到该用户。',
      other: '未找到该记录。',
    },
  },
  failureReasons: {
    card_declined: '银行卡被拒绝',
    insufficient_funds: '余额不足',
    unknown_test_card: '不是沙箱测试卡号',
    processing_error: '支付渠道处理出错',
    expired_card: '银行卡已过期',
    declined: '被拒绝',
    requested: '应要求取消',
    expired: '支付已过期',
  },
}

i18n.global.mergeLocaleMessage('en', en)
i18n.global.mergeLocaleMessage('zh-CN', zh)

const NOT_FOUND_KINDS = ['order', 'customer', 'product', 'payment', 'import', 'user']

// [pattern, key, (match) => params]; the first that matches the whole message wins.
const PATTERNS = [
  [/^Missing data for required field\.$/, 'required'],
  [/^Field may not be null\.$/, 'null'],
  [/^Unknown field\.$/, 'unknownField'],
  [/^Not a valid e-?mail address\.$/, 'email'],
  [/^Not a phone number\.$/, 'notPhone'],
  [/^Not a valid phone number in ([A-Z]{2}); use international form, like (\+\d+)\.$/, 'phoneIn', (m) => ({ region: regionName(m[1]), example: m[2] })],
  [/^Not a valid phone number; use international form, like (\+\d+)\.$/, 'phone', (m) => ({ example: m[1] })],
  [/^Must be a phone number in E\.164 form, like (\+\d+)\.$/, 'e164', (m) => ({ example: m[1] })],
  [/^Same number as entry (\d+)\.$/, 'samePhone', (m) => ({ n: Number(m[1]) + 1 })],
  [/^Not a valid UUID\.$/, 'uuid'],
  [/^Not a valid integer\.$/, 'integer'],
  [/^(Not a valid number|Must be a number|Must be a finite number)\.$/, 'number'],
  [/^(Not a valid string|Must be a string|Must be text)\.$/, 'string'],
  [/^(Not a valid boolean|Must be true or false|Must be yes or no)\.$/, 'boolean'],
  [/^Not a valid date\.$/, 'date'],
  [/^Not a valid (ISO-8601 )?datetime\.$/, 'datetime'],
  [/^Not a valid URL\.$/, 'url'],
  [/^Not a valid list\.$/, 'list'],
  [/^Shorter than minimum length (\d+)\.$/, 'minLength', (m) => ({ n: m[1] })],
  [/^Longer than maximum length (\d+)\.$/, 'maxLength', (m) => ({ n: m[1] })],
  [/^Must be at least (\d+) characters long\.$/, 'minLength', (m) => ({ n: m[1] })],
  [/^Must be at most (\d+) characters long\.$/, 'maxLength', (m) => ({ n: m[1] })],
  [/^Length must be between (\d+) and (\d+)\.$/, 'lengthBetween', (m) => ({ min: m[1], max: m[2] })],
  [/^Must be one of: (.+)\.$/, 'oneOf', (m) => ({ choices: m[1] })],
  [/^Must be 0 or more\.$/, 'zeroOrMore'],
  [/^Must be greater than or equal to (-?[\d.]+)\.$/, 'atLeast', (m) => ({ n: m[1] })],
  [/^Must be less than or equal to (-?[\d.]+)\.$/, 'atMost', (m) => ({ n: m[1] })],
  [/^Must be greater than or equal to (-?[\d.]+) and less than or equal to (-?[\d.]+)\.$/, 'between', (m) => ({ min: m[1], max: m[2] })],
  [/^Must be between (-?\d+) and (-?\d+)\.$/, 'between', (m) => ({ min: m[1], max: m[2] })],
  [/^Must be a date, like (.+)\.$/, 'dateLike', (m) => ({ example: m[1] })],
  [/^Not a valid card number\.$/, 'cardNumber'],
  [/^The card has expired\.$/, 'cardExpired'],
  [/^(\w+) not found\.?$/i, null, null, (m) => `serverText.notFound.${NOT_FOUND_KINDS.includes(m[1].toLowerCase()) ? m[1].toLowerCase() : 'other'}`],
]

function regionName(code) {
  try {
    const names = new Intl.DisplayNames([i18n.global.locale.value], { type: 'region' })
    return names.of(code) || code
  } catch {
    return code
  }
}

/** A message of the server in the UI's language, or the message itself when we do not know it. */
export function serverText(text) {
  if (typeof text !== 'string') return text
  const { t } = i18n.global
  const trimmed = text.trim()
  for (const [pattern, key, params, keyOf] of PATTERNS) {
    const match = pattern.exec(trimmed)
    if (match) return t(keyOf ? keyOf(match) : `serverText.${key}`, params ? params(match) : {})
  }
  return text
}

/** A payment's failure reason (a code such as card_declined) in words; unknown codes as they are. */
export function failureReason(code) {
  if (!code) return ''
  const { t, te } = i18n.global
  return te(`failureReasons.${code}`) ? t(`failureReasons.${code}`) : code
}
