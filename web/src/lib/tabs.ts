/**
 * The ARIA tab pattern's keys, framework-free: in a tablist, the arrow keys move to the
 * next or previous tab (wrapping), Home and End to the first and last. Only the selected
 * tab is in the Tab order (roving tabindex), so Tab leaves the list for the panel.
 */

/** The index a key moves to from `current` among `count` tabs, or null for other keys. */
export function nextTab(key: string, current: number, count: number): number | null {
  if (count <= 0) return null;
  const at = current < 0 ? 0 : current;
  switch (key) {
    case "ArrowRight":
    case "ArrowDown":
      return (at + 1) % count;
    case "ArrowLeft":
    case "ArrowUp":
      return (at - 1 + count) % count;
    case "Home":
      return 0;
    case "End":
      return count - 1;
    default:
      return null;
  }
}
