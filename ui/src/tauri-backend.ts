// The real backend: Tauri commands of src-tauri and its `skiff://event` stream.

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { getCurrentWebview } from '@tauri-apps/api/webview';
import { toCommandError, type Backend, type Unlisten } from './backend';
import type {
  Account,
  Contact,
  DragDropEvent,
  EngineEvent,
  HistoryQuery,
  Settings,
  SignInArgs,
  TransferRecord,
} from './types';

/** The Tauri event carrying one engine Event as its payload. */
export const EVENT_CHANNEL = 'skiff://event';

/** `invoke` that always rejects with a `{ code, message }`. */
async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toCommandError(e);
  }
}

/** Drops `undefined` members so optional arguments arrive as absent, not null. */
function defined<T extends object>(o: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

export class TauriBackend implements Backend {
  signIn(args: SignInArgs) {
    return call<{ jid: string }>('sign_in', defined(args));
  }
  signOut() {
    return call<void>('sign_out');
  }
  account() {
    return call<Account | null>('account');
  }
  roster() {
    return call<Contact[]>('roster');
  }
  sendFiles(to: string, paths: string[]) {
    return call<number[]>('send_files', { to, paths });
  }
  accept(id: number, dir?: string) {
    return call<void>('accept', defined({ id, dir }));
  }
  reject(id: number) {
    return call<void>('reject', { id });
  }
  cancel(id: number) {
    return call<void>('cancel', { id });
  }
  resume(id: number) {
    return call<void>('resume', { id });
  }
  retry(id: number) {
    return call<void>('retry', { id });
  }
  history(query: HistoryQuery) {
    return call<TransferRecord[]>('history', defined(query));
  }
  removeFromHistory(id: number) {
    return call<void>('remove_from_history', { id });
  }
  openFile(id: number) {
    return call<void>('open_file', { id });
  }
  showInFolder(id: number) {
    return call<void>('show_in_folder', { id });
  }
  getSettings() {
    return call<Settings>('get_settings');
  }
  setSettings(settings: Settings) {
    return call<void>('set_settings', { settings });
  }
  pickFiles() {
    return call<string[]>('pick_files');
  }
  pickFolder() {
    return call<string | null>('pick_folder');
  }
  async onEvent(handler: (event: EngineEvent) => void): Promise<Unlisten> {
    return listen<EngineEvent>(EVENT_CHANNEL, (e) => handler(e.payload));
  }
  async onDragDrop(handler: (event: DragDropEvent) => void): Promise<Unlisten> {
    return getCurrentWebview().onDragDropEvent((e) => {
      const p = e.payload;
      switch (p.type) {
        case 'enter':
        case 'drop':
          handler({ type: p.type, paths: p.paths, position: { x: p.position.x, y: p.position.y } });
          break;
        case 'over':
          handler({ type: 'over', position: { x: p.position.x, y: p.position.y } });
          break;
        case 'leave':
          handler({ type: 'leave' });
          break;
      }
    });
  }
}
