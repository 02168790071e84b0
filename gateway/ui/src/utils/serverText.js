// The server's own words (field messages of marshmallow and the services, "order not found",
// payment failure reasons) in the UI's language. The API answers in English; a message we know
// is said in our words, anything else is shown as the server wrote it.
import { i18n } from '../i18n/index.js'
import { session } from '../api/session.js'

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
    roleForbidden: 'Your role ({role}) may not do this.',
    noCustomerMatches: 'No customer matches.',
    empty: 'Empty.',
    matchNotYours: 'Matches a customer you may not change.',
    nameToCreate: 'Required to create a customer.',
    yesNo: 'Must be yes or no (是 or 否, true or false).',
    unknownAttribute: 'Unknown attribute; an admin defines attributes first.',
    personOrCompany: 'Must be person or company (个人 or 公司).',
    inUse: 'Already in use by another customer{rest}.',
    country: 'Not an ISO 3166-1 alpha-2 country code, like CN.',
    currency: 'Not an ISO 4217 currency code, like CNY.',
    postalCode: 'Not a postal code.',
    language: 'Not a language tag, like zh-CN or en.',
    tag: "A tag is 1 to 50 letters or digits, joined by '-' or '_', like vip or key-account.",
    sameAddress: 'The same address is given twice.',
    onePrimary: 'At most one entry may be primary.',
    customerId: 'Not a customer id (UUID).',
    linesOrAmount: 'Give either lines or an amount.',
    decimals: 'At most {n} decimals in {currency}.',
    dateOrDateTime: 'Not a date (2024-03-01) or ISO date-time.',
    notFuture: 'Must not be in the future.',
    lineFormat: 'Line {n}: not SKU*quantity{at}price.',
    linePrice: 'Line {n}: give the price of {sku}.',
    lineUnknownSku: 'Line {n}: {sku} is not in the catalogue; give its price ({example}).',
    lineOtherCurrency: 'Line {n}: {sku} is priced in {priced}, not {currency}; give its price.',
    noLines: 'No lines.',
    noSuchCustomer: 'No such customer.',
    customerErased: 'This customer was erased.',
    unknownColumn: 'Unknown column: {columns}.',
    missingColumn: 'Missing column: {columns}.',
    linesOrAmountColumn: 'Give either a lines or an amount column.',
    valueSays: '{value}: {message}',
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
    roleForbidden: '您的角色（{role}）无权执行此操作。',
    noCustomerMatches: '没有匹配的客户。',
    empty: '为空。',
    matchNotYours: '匹配到的客户您无权修改。',
    nameToCreate: '新建客户时必填。',
    yesNo: '须为“是”或“否”（也可写 true / false）。',
    unknownAttribute: '未知的自定义属性；请先由管理员定义。',
    personOrCompany: '须为“个人”或“公司”。',
    inUse: '已被另一位客户使用{rest}。',
    country: '不是 ISO 3166-1 两位国家代码（如 CN）。',
    currency: '不是 ISO 4217 货币代码（如 CNY）。',
    postalCode: '邮政编码格式不正确。',
    language: '不是语言代码（如 zh-CN 或 en）。',
    tag: '标签为 1–50 个字母或数字，可用 - 或 _ 连接，如 vip 或 key-account。',
    sameAddress: '同一地址填写了两次。',
    onePrimary: '最多只能有一个首选项。',
    customerId: '不是客户编号（UUID）。',
    linesOrAmount: '请填写商品明细或金额（二选一）。',
    decimals: '{currency} 金额最多 {n} 位小数。',
    dateOrDateTime: '不是日期（如 2024-03-01）或 ISO 日期时间。',
    notFuture: '不能晚于当前时间。',
    lineFormat: '第 {n} 项：格式应为 SKU*数量{at}单价。',
    linePrice: '第 {n} 项：请填写 {sku} 的单价。',
    lineUnknownSku: '第 {n} 项：商品目录中没有 {sku}；请填写其单价（{example}）。',
    lineOtherCurrency: '第 {n} 项：{sku} 以 {priced} 定价，不是 {currency}；请填写其单价。',
    noLines: '没有商品明细。',
    noSuchCustomer: '没有此客户。',
    customerErased: '该客户的个人信息已被擦除。',
    unknownColumn: '未知的列：{columns}。',
    missingColumn: '缺少列：{columns}。',
    linesOrAmountColumn: '请提供 lines 或 amount 列（二选一）。',
    valueSays: '“{value}”：{message}',
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
  [/^the (\w+) role may not .+$/i, 'roleForbidden', (m) => ({ role: roleName(m[1]) })],
  [/^your role may not .+$/i, 'roleForbidden', () => ({ role: roleName(session.user?.role) })],
  [/^No customer matches\.$/, 'noCustomerMatches'],
  [/^Empty\.$/, 'empty'],
  [/^Matches a customer you may not change\.$/, 'matchNotYours'],
  [/^Required to create a customer\.$/, 'nameToCreate'],
  [/^Required\.$/, 'required'],
  [/^Must be yes or no \(.+\)\.$/, 'yesNo'],
  [/^Unknown attribute; an admin defines attributes first\.$/, 'unknownAttribute'],
  [/^Must be person or company \(.+\)\.$/, 'personOrCompany'],
  [/^Already in use by another customer(.*)\.$/, 'inUse', (m) => ({ rest: m[1] })],
  [/^At most (\d+) characters\.$/, 'maxLength', (m) => ({ n: m[1] })],
  [/^Not an ISO 3166-1 alpha-2 country code, like CN\.$/, 'country'],
  [/^Not an ISO 4217 (currency )?code(, like CNY)?\.$/, 'currency'],
  [/^Not a postal code\.$/, 'postalCode'],
  [/^Not a language tag, like zh-CN or en\.$/, 'language'],
  [/^A tag is 1 to 50 letters or digits/, 'tag'],
  [/^The same address is given twice\.$/, 'sameAddress'],
  [/^At most one entry may be primary\.$/, 'onePrimary'],
  [/^Not a customer id \(UUID\)\.$/, 'customerId'],
  [/^Give either lines or an amount\.$/, 'linesOrAmount'],
  [/^Not a number\.$/, 'number'],
  [/^At most (\d+) decimals in ([A-Z]{3})\.$/, 'decimals', (m) => ({ n: m[1], currency: m[2] })],
  [/^Not a date \(2024-03-01\) or ISO date-time\.$/, 'dateOrDateTime'],
  [/^Must not be in the future\.$/, 'notFuture'],
  [/^Line (\d+): not SKU\*quantity@price\.$/, 'lineFormat', (m) => ({ n: m[1], at: '@' })],
  [/^Line (\d+): give the price of (.+)\.$/, 'linePrice', (m) => ({ n: m[1], sku: m[2] })],
  [/^Line (\d+): (\S+) is not in the catalogue; give its price \((.+)\)\.$/, 'lineUnknownSku', (m) => ({ n: m[1], sku: m[2], example: m[3] })],
  [/^Line (\d+): (\S+) is priced in ([A-Z]{3}), not ([A-Z]{3}); give its price\.$/, 'lineOtherCurrency', (m) => ({ n: m[1], sku: m[2], priced: m[3], currency: m[4] })],
  [/^No lines\.$/, 'noLines'],
  [/^No such customer\.$/, 'noSuchCustomer'],
  [/^This customer was erased\.$/, 'customerErased'],
  [/^Unknown columns?: (.+)\.$/, 'unknownColumn', (m) => ({ columns: m[1] })],
  [/^Missing columns?: (.+)\.$/, 'missingColumn', (m) => ({ columns: m[1] })],
  [/^Give either a lines or an amount column\.$/, 'linesOrAmountColumn'],
  [/^(\w+) not found\.?$/i, null, null, (m) => `serverText.notFound.${NOT_FOUND_KINDS.includes(m[1].toLowerCase()) ? m[1].toLowerCase() : 'other'}`],
]

export function roleName(role) {
  const { t, te } = i18n.global
  return role && te(`roles.${role}`) ? t(`roles.${role}`) : role || ''
}

function regionName(code) {
  try {
    const names = new Intl.DisplayNames([i18n.global.locale.value], { type: 'region' })
    return names.of(code) || code
  } catch {
    return code
  }
}

/** A message of the server in the UI's language, or the message itself when we do not know it. */
function known(text) {
  const { t } = i18n.global
  for (const [pattern, key, params, keyOf] of PATTERNS) {
    const match = pattern.exec(text)
    if (match) return t(keyOf ? keyOf(match) : `serverText.${key}`, params ? params(match) : {})
  }
  return null
}

/**
 * A message of the server in the UI's language, or the message itself when we do not know it.
 * An import's reason quotes the cell before the message ("12345: Not a valid phone number in
 * CN; …"): the cell is kept as written and the message after it said in our words.
 */
export function serverText(text) {
  if (typeof text !== 'string') return text
  const trimmed = text.trim()
  const whole = known(trimmed)
  if (whole !== null) return whole
  for (let at = trimmed.indexOf(': '); at > 0; at = trimmed.indexOf(': ', at + 1)) {
    const message = known(trimmed.slice(at + 2).trim())
    if (message !== null) return i18n.global.t('serverText.valueSays', { value: trimmed.slice(0, at), message })
  }
  return text
}

/** A payment's failure reason (a code such as card_declined) in words; unknown codes as they are. */
export function failureReason(code) {
  if (!code) return ''
  const { t, te } = i18n.global
  return te(`failureReasons.${code}`) ? t(`failureReasons.${code}`) : code
}
