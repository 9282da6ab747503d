// Entry point: pick the backend (Tauri, or the mock in a plain browser / with ?mock)
// and start the app.

import './styles.css';
import { start } from './app';
import { createBackend } from './backend';

const root = document.getElementById('app')!;

createBackend()
  .then((backend) => start(root, backend))
  .catch((e: unknown) => {
    console.error(e);
    root.textContent = `Skiff could not start: ${e instanceof Error ? e.message : JSON.stringify(e)}`;
  });
