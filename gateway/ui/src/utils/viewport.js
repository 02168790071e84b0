// The window's width class, for layouts that change with it (a tablet, a small laptop).
import { ref } from 'vue'

/** Below this width the sidebar starts collapsed and side-by-side panels stack. */
export const NARROW_MAX_PX = 1023

const query = typeof window !== 'undefined' && window.matchMedia
  ? window.matchMedia(`(max-width: ${NARROW_MAX_PX}px)`)
  : null

/** True while the window is narrower than 1024 px (a tablet, a split screen). */
export const narrow = ref(Boolean(query?.matches))
query?.addEventListener('change', (event) => {
  narrow.value = event.matches
})
