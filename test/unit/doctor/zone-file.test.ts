import { describe, expect, it } from 'vitest';
import { parseZone, ZoneSyntaxError } from '../../../lambdas/domain/doctor/zone-file.ts';

describe('parseZone', () => {
  it('resolves @, relative and absolute names against $ORIGIN and applies $TTL', () => {
    // Prepare
    const text = [
      '$ORIGIN example.com.',
      '$TTL 1h',
      '@        IN  MX  10 mx.example.net.',
      'bounce       MX  10 feedback-smtp.eu-west-1.amazonses.com.',
      'www.other.org. 300 IN CNAME target',
    ].join('\n');

    // Act
    const records = parseZone(text);

    // Assess
    expect(records).toEqual([
      { name: 'example.com', ttl: 3600, type: 'MX', data: ['10', 'mx.example.net'] },
      {
        name: 'bounce.example.com',
        ttl: 3600,
        type: 'MX',
        data: ['10', 'feedback-smtp.eu-west-1.amazonses.com'],
      },
      { name: 'www.other.org', ttl: 300, type: 'CNAME', data: ['target.example.com'] },
    ]);
  });

  it('repeats the previous owner when a line starts with blank space, with class and TTL in either order', () => {
    // Prepare
    const text = [
      '$ORIGIN example.com.',
      'mail IN 60 TXT "one"',
      '     60 IN TXT "two"',
      '\tTXT "three"',
    ].join('\n');

    // Act
    const records = parseZone(text);

    // Assess
    expect(records.map((r) => [r.name, r.ttl, r.data[0]])).toEqual([
      ['mail.example.com', 60, 'one'],
      ['mail.example.com', 60, 'two'],
      ['mail.example.com', undefined, 'three'],
    ]);
  });

  it('joins lines inside parentheses and ignores comments, also within them', () => {
    // Prepare
    const text = [
      '$ORIGIN example.com.',
      '@ IN SOA ns1 hostmaster ( 2024010101 ; serial',
      '   3600 ; refresh',
      '   600 86400 300 )',
      '_dmarc TXT ( "v=DMARC1; p=reject;" ; first part',
      '             " rua=mailto:d@example.com" ) ; done',
    ].join('\n');

    // Act
    const records = parseZone(text);

    // Assess
    expect(records).toHaveLength(2);
    // SOA's names are kept as written: the doctor reads no SOA.
    expect(records[0]?.data).toEqual(['ns1', 'hostmaster', '2024010101', '3600', '600', '86400', '300']);
    expect(records[1]).toEqual({
      name: '_dmarc.example.com',
      ttl: undefined,
      type: 'TXT',
      data: ['v=DMARC1; p=reject;', ' rua=mailto:d@example.com'],
    });
  });

  it("keeps a TXT record's strings apart and unescapes quotes, backslashes and \\DDD", () => {
    // Prepare
    const text = 'x.example.com. TXT "say \\"hi\\"" "a\\\\b" "semi\\059colon" ";not a comment"';

    // Act
    const [record] = parseZone(text);

    // Assess
    expect(record?.data).toEqual(['say "hi"', 'a\\b', 'semi;colon', ';not a comment']);
  });

  it('takes the starting origin from the caller when the file has no $ORIGIN', () => {
    // Act
    const records = parseZone('_dmarc TXT "v=DMARC1; p=none"', { origin: 'Example.COM' });

    // Assess
    expect(records[0]?.name).toBe('_dmarc.example.com');
  });

  it.each([
    ['a relative name with no origin', 'www TXT "x"', 'line 1: relative name with no $ORIGIN'],
    ['an unterminated string', '$ORIGIN a.com.\n@ TXT "open', 'line 2: unterminated quoted string'],
    ['an unclosed parenthesis', '$ORIGIN a.com.\n@ TXT ( "x"', 'line 2: unbalanced "(": missing ")"'],
    ['a missing type', '$ORIGIN a.com.\n@ 300 IN', 'line 2: expected a record type'],
    ['$INCLUDE', '$INCLUDE other.zone', 'line 1: unsupported directive $INCLUDE'],
    ['a class other than IN', 'a.com. CH TXT "x"', 'line 1: class CH is not IN'],
    ['an MX without preference', 'a.com. MX mx.a.com.', 'line 1: MX takes a preference and an exchange'],
    ['an owner-less first record', '  TXT "x"', 'line 1: no owner name before this record'],
  ])('refuses %s with the line number', (_case, text, message) => {
    // Act
    const read = () => parseZone(text);

    // Assess
    expect(read).toThrow(ZoneSyntaxError);
    expect(read).toThrow(message);
  });
});
