import { $, setUpTheme } from './common.js'

// An account's history (first cut: the form; the chart and partners come next).

setUpTheme()
$('f').addEventListener('submit', (e) => e.preventDefault())
