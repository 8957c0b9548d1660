import { createHash } from 'node:crypto';
import type { Outcome } from '../../domain/errors.js';
import type { SellerInputShape } from '../seller-config.js';
import { SandboxFleet } from './fleet.js';

/** A stable seller id per sandbox seller key, so re-registering after a restart updates in place. */
export function sandboxSellerId(key: string): string {
  const h = createHash('sha1').update(`sandbox-seller:${key}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The part of the seller service the sandbox needs: it registers like any admin would. */
export interface SellerRegistry {
  list(): Promise<readonly { id: string }[]>;
  ensure(id: string, input: SellerInputShape): Promise<Outcome<unknown>>;
}

export interface EmbeddedSandbox {
  fleet: SandboxFleet;
  stop(): Promise<void>;
}

/**
 * Runs the sandbox fleet in this process and registers its sellers through the same seller
 * configuration an admin would use (they are reached only through the generic connector).
 * `auto` does so only when no other seller is configured.
 */
export async function embedSandbox(o: {
  mode: 'auto' | 'on' | 'off';
  sellers: SellerRegistry;
  port: number;
  seed: number;
  latencyScale: number;
}): Promise<EmbeddedSandbox | null> {
  if (o.mode === 'off') return null;
  const fleet = new SandboxFleet({ seed: o.seed, latencyScale: o.latencyScale });
  if (o.mode === 'auto') {
    const ours = new Set(fleet.specs().map((s) => sandboxSellerId(s.key)));
    const others = (await o.sellers.list()).filter((s) => !ours.has(s.id));
    if (others.length > 0) return null;
  }
  await fleet.start(o.port);
  const inputs = fleet.sellerInputs();
  const specs = fleet.specs();
  for (let i = 0; i < inputs.length; i++) {
    const result = await o.sellers.ensure(sandboxSellerId(specs[i]!.key), inputs[i]!);
    if (!result.ok) {
      await fleet.stop();
      throw new Error(`sandbox seller ${specs[i]!.key} has an invalid configuration: ${JSON.stringify(result.errors)}`);
    }
  }
  return { fleet, stop: () => fleet.stop() };
}
