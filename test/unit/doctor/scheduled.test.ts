import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createScheduledDoctor } from '../../../lambdas/doctor/app.ts';
import type { SesView } from '../../../lambdas/domain/doctor/checks.ts';
import type { Baseline, BaselineStore } from '../../../lambdas/domain/doctor/regression.ts';
import { ZoneDns } from '../../../lambdas/domain/doctor/zone-dns.ts';
import { parseZone } from '../../../lambdas/domain/doctor/zone-file.ts';
import { DoctorMetric } from '../../../lambdas/shared/names.ts';
import { metrics } from '../../../lambdas/shared/observability.ts';

const SES: SesView = {
  kind: 'found',
  facts: {
    identity: 'example.com',
    verifiedForSending: true,
    dkimStatus: 'SUCCESS',
    dkimSigningEnabled: true,
    dkimTokens: ['tok1', 'tok2', 'tok3'],
    mailFromDomain: 'bounce.example.com',
  },
};

class MemoryBaselines implements BaselineStore {
  readonly items = new Map<string, Baseline>();
  async read(domain: string) {
    return this.items.get(domain);
  }
  async write(domain: string, baseline: Baseline) {
    this.items.set(domain, baseline);
  }
}

function dnsOf(file: string) {
  return new ZoneDns(parseZone(readFileSync(file, 'utf8')), file, ['example.com']);
}

afterEach(() => {
  vi.restoreAllMocks();
  metrics.clearMetrics();
});

describe('the scheduled domain doctor', () => {
  it('counts checks that passed yesterday and fail today as regressed, and a metric per failing check', async () => {
    // Prepare
    const baselines = new MemoryBaselines();
    const region = 'eu-west-1';
    await createScheduledDoctor(
      {
        dns: dnsOf('test/fixtures/doctor/good.zone'),
        readIdentity: async () => SES,
        baseline: baselines,
        region,
      },
      ['example.com'],
    )();
    const addMetric = vi.spyOn(metrics, 'addMetric');
    const single = vi.spyOn(metrics, 'singleMetric');

    // Act
    const outcomes = await createScheduledDoctor(
      {
        dns: dnsOf('test/fixtures/doctor/mistakes.zone'),
        readIdentity: async () => SES,
        baseline: baselines,
        region,
      },
      ['example.com'],
    )();

    // Assess
    const outcome = outcomes[0];
    expect(outcome?.regressed).toEqual(
      expect.arrayContaining(['dkim_cnames', 'mail_from_mx', 'mail_from_spf', 'spf_record']),
    );
    expect(addMetric).toHaveBeenCalledWith(DoctorMetric.checksRegressed, 'Count', outcome?.regressed.length);
    expect(single).toHaveBeenCalledTimes(outcome?.failed.length ?? -1);
    expect(baselines.items.get('example.com')?.dkim_cnames).toBe('pass');
  });

  it('reports no regression on the first run, and fails the invocation when SES cannot be read after checking the rest', async () => {
    // Prepare
    const baselines = new MemoryBaselines();
    const addMetric = vi.spyOn(metrics, 'addMetric');
    const readIdentity = async (domain: string): Promise<SesView> => {
      if (domain === 'broken.example.com') throw new Error('SES unavailable');
      return SES;
    };

    // Act
    const run = createScheduledDoctor(
      {
        dns: dnsOf('test/fixtures/doctor/mistakes.zone'),
        readIdentity,
        baseline: baselines,
        region: 'eu-west-1',
      },
      ['broken.example.com', 'example.com'],
    )();

    // Assess
    await expect(run).rejects.toThrow('SES unavailable');
    expect(baselines.items.has('example.com')).toBe(true);
    expect(addMetric).toHaveBeenCalledWith(DoctorMetric.checksRegressed, 'Count', 0);
  });
});
