/// <reference types="vitest/config" />
import { defineConfig } from 'vite';

// The desktop shell loads ui/dist/ from disk (tauri.conf.json `frontendDist`), so every
// asset path is relative. No dev server URL is baked into the Tauri config.
export default defineConfig({
  base: './',
  clearScreen: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
    // Date formatting tests are written for UTC.
    env: { TZ: 'UTC' },
  },
});
