// The real backend: the Tauri commands of src-tauri, through the wrappers generated from
// the Rust command table (`bindings/commands.ts`), and its `skiff://event` stream.

import { listen } from '@tauri-apps/api/event';
import { getCurrentWebview } from '@tauri-apps/api/webview';
import { toCommandError, type Backend, type Unlisten } from './backend';
import * as commands from './bindings/commands';
import type { DragDropEvent, EngineEvent, HistoryQuery, Settings, SignInArgs } from './types';

/** The Tauri event carrying one engine Event as its payload. */
export const EVENT_CHANNEL = 'skiff://event';
/** The shell's `events::FOCUS_OFFER`: a transfer id. */
export const FOCUS_OFFER_CHANNEL = 'skiff://focus-offer';
/** The shell's `skiff://open-files`: the files a launch handed over (the whole pending list). */
export const OPEN_FILES_CHANNEL = 'skiff://open-files';

/** A command's result, or a rejection with `{ code, message }` whatever it threw. */
async function call<T>(command: Promise<T>): Promise<T> {
  try {
    return await command;
  } catch (e) {
    throw toCommandError(e);
  }
}

/** Drops `undefined` members so optional arguments arrive as absent, not null. */
function defined<T extends object>(o: T): T {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k as keyof T] = v;
  return out as T;
}

export class TauriBackend implements Backend {
  signIn(args: SignInArgs) {
    return call(commands.signIn(defined(args)));
  }
  async signOut() {
    await call(commands.signOut());
  }
  account() {
    return call(commands.account());
  }
  rememberedAccount() {
    return call(commands.rememberedAccount());
  }
  roster() {
    return call(commands.roster());
  }
  sendFiles(to: string, paths: string[]) {
    return call(commands.sendFiles({ to, paths }));
  }
  async accept(id: number, dir?: string) {
    await call(commands.accept(defined({ id, dir })));
  }
  async reject(id: number) {
    await call(commands.reject({ id }));
  }
  async cancel(id: number) {
    await call(commands.cancel({ id }));
  }
  resume(id: number) {
    return call(commands.resume({ id }));
  }
  retry(id: number) {
    return call(commands.retry({ id }));
  }
  uploadInstead(id: number) {
    return call(commands.uploadInstead({ id }));
  }
  history(query: HistoryQuery) {
    return call(commands.history(defined(query)));
  }
  async removeFromHistory(id: number) {
    await call(commands.removeFromHistory({ id }));
  }
  async openFile(id: number) {
    await call(commands.openFile({ id }));
  }
  async showInFolder(id: number) {
    await call(commands.showInFolder({ id }));
  }
  getSettings() {
    return call(commands.getSettings());
  }
  async setSettings(settings: Settings) {
    await call(commands.setSettings({ settings }));
  }
  pickFiles() {
    return call(commands.pickFiles());
  }
  pickFolder() {
    return call(commands.pickFolder({}));
  }
  takePendingFiles() {
    return call(commands.takePendingFiles());
  }
  async onEvent(handler: (event: EngineEvent) => void): Promise<Unlisten> {
    return listen<EngineEvent>(EVENT_CHANNEL, (e) => handler(e.payload));
  }
  async onFocusOffer(handler: (id: number) => void): Promise<Unlisten> {
    return listen<number>(FOCUS_OFFER_CHANNEL, (e) => handler(e.payload));
  }
  async onOpenFiles(handler: (paths: string[]) => void): Promise<Unlisten> {
    return listen<string[]>(OPEN_FILES_CHANNEL, (e) => handler(e.payload));
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
