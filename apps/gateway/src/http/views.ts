import type { NestExpressApplication } from '@nestjs/platform-express';
import hbs from 'hbs';
import { gatewayPaths } from './paths.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

let helpersRegistered = false;

/** Handlebars views with one layout and shared partials (hbs carries its own Handlebars copy). */
export async function configureViews(app: NestExpressApplication): Promise<void> {
  if (!helpersRegistered) {
    hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
    hbs.registerHelper('formatBytes', (n: number) => formatBytes(Number(n)));
    hbs.registerHelper('isoDate', (d: Date | null | undefined) => (d ? new Date(d).toISOString() : ''));
    hbs.registerHelper('shortHash', (h: string | null | undefined) => (h ? `${h.slice(0, 12)}…` : ''));
    hbs.registerHelper('year', () => new Date().getFullYear());
    await new Promise<void>((resolve) => hbs.registerPartials(gatewayPaths.partials, () => resolve()));
    helpersRegistered = true;
  }
  app.setBaseViewsDir(gatewayPaths.views);
  app.setViewEngine('hbs');
  app.set('view options', { layout: 'layouts/main' });
}
