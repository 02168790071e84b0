// A list paged by the server's next_cursor: forward by the cursor it gave, back by the cursors
// we kept on the way.
import { ref, computed } from 'vue'
import { showProblem } from './problem.js'

export function useCursorList(fetchPage, { limit: initialLimit = 20 } = {}) {
  const items = ref([])
  const loading = ref(false)
  const limit = ref(initialLimit)
  const cursors = ref([null]) // cursor that opened each page seen so far
  const nextCursor = ref(null)
  const error = ref(null)
  let ticket = 0

  const page = computed(() => cursors.value.length)
  const hasNext = computed(() => Boolean(nextCursor.value))

  async function load() {
    const mine = ++ticket
    loading.value = true
    error.value = null
    try {
      const cursor = cursors.value[cursors.value.length - 1]
      const answer = await fetchPage({ limit: limit.value, cursor })
      if (mine !== ticket) return // a newer request is under way
      items.value = answer?.items ?? []
      nextCursor.value = answer?.next_cursor ?? null
    } catch (e) {
      if (mine !== ticket) return
      error.value = e
      items.value = []
      nextCursor.value = null
      showProblem(e)
    } finally {
      if (mine === ticket) loading.value = false
    }
  }

  function reset() {
    cursors.value = [null]
    return load()
  }

  function next() {
    if (!nextCursor.value) return
    cursors.value = [...cursors.value, nextCursor.value]
    return load()
  }

  function prev() {
    if (cursors.value.length <= 1) return
    cursors.value = cursors.value.slice(0, -1)
    return load()
  }

  function setLimit(n) {
    limit.value = n
    return reset()
  }

  return { items, loading, limit, page, hasNext, error, load, reset, next, prev, setLimit }
}
