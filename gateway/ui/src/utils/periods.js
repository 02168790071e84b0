// Time series by period: the API lists only the periods that had something; a chart over time
// needs the empty ones too, or two months a year apart sit side by side like neighbours.

/** The first day (YYYY-MM-DD, UTC) of the period after `period`, for day, week or month. */
export function nextPeriod(period, unit) {
  const day = new Date(`${String(period).slice(0, 10)}T00:00:00Z`)
  if (unit === 'month') day.setUTCMonth(day.getUTCMonth() + 1, 1)
  else day.setUTCDate(day.getUTCDate() + (unit === 'week' ? 7 : 1))
  return day.toISOString().slice(0, 10)
}

/**
 * Every period from the first row's to the last row's, in order: the rows as they are, and a
 * row of `zero(period)` for each period in between that has none. Periods are the first day of
 * their bucket (a month's 1st, a week's Monday), as the analytics API gives them.
 */
export function fillPeriods(rows, unit, zero) {
  const sorted = [...(rows || [])].sort((a, b) => String(a.period).localeCompare(String(b.period)))
  if (sorted.length < 2) return sorted
  const out = []
  const last = String(sorted[sorted.length - 1].period).slice(0, 10)
  let expected = String(sorted[0].period).slice(0, 10)
  let i = 0
  // (a guard against a malformed period: never more than ~11 years of days)
  for (let guard = 0; expected <= last && guard < 4000; guard += 1) {
    let found = false
    while (i < sorted.length && String(sorted[i].period).slice(0, 10) === expected) {
      out.push(sorted[i])
      i += 1
      found = true
    }
    if (!found) out.push(zero(expected))
    expected = nextPeriod(expected, unit)
  }
  return out
}
