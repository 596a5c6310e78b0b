import { $, getJson, setUpTheme } from './common.js'

// The network page (first cut: the pipeline's live state; the charts and top lists come next).

setUpTheme()
const health = $('health')

async function refresh(): Promise<void> {
  try {
    const live = await getJson<Record<string, unknown>>('/v1/stats/live')
    health.replaceChildren(
      ...['rate', 'lagMs', 'indexerLagEntries'].flatMap((k) => {
        const dt = document.createElement('dt')
        dt.textContent = k
        const dd = document.createElement('dd')
        dd.textContent = String(live[k] ?? '–')
        return [dt, dd]
      }),
    )
  } catch (err) {
    $('status').textContent = String(err)
  }
}
void refresh()
