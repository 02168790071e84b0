// Live status without a reload: a long poll of the changes feed (GET /orders/changes?after=&wait=)
// that hands every change to `onChange`. The gateway answers within `wait` seconds (at most 4,
// under its RPC deadline) with what happened after `after`, or with nothing; then we ask again.
import { onBeforeUnmount } from 'vue'
import { orders } from '../../api/orders.js'

const WAIT_SECONDS = 3
const PAUSE_AFTER_ERROR_MS = 3000

export function useOrderChanges(onChange, { orderId = () => null } = {}) {
  let running = false
  let after = null
  let generation = 0

  async function loop(mine) {
    while (running && mine === generation) {
      try {
        if (after === null) {
          after = (await orders.changes({}))?.last_position ?? 0
          continue
        }
        const page = await orders.changes({ after, wait: WAIT_SECONDS, orderId: orderId() || undefined })
        if (!running || mine !== generation) return
        after = page?.last_position ?? after
        if (page?.items?.length) onChange(page.items)
      } catch {
        await new Promise((resolve) => setTimeout(resolve, PAUSE_AFTER_ERROR_MS))
      }
    }
  }

  function start() {
    if (running) return
    running = true
    generation += 1
    loop(generation)
  }

  function stop() {
    running = false
    generation += 1
  }

  /** Start over from now (another order on the same page). */
  function restart() {
    stop()
    after = null
    start()
  }

  onBeforeUnmount(stop)
  return { start, stop, restart }
}
