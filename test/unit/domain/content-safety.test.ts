import { describe, expect, it } from 'vitest';
import {
  attachmentRefusal,
  executableExtension,
  isRefusedContentType,
  REFUSED_CONTENT_TYPES,
  REFUSED_EXTENSIONS,
  sniffExecutable,
} from '../../../lambdas/domain/send/content-safety.ts';
import { validateSendRequest } from '../../../lambdas/domain/send/send-request.ts';
import { sendBody } from '../../support/builders.ts';
import { problemOfSync } from '../../support/problems.ts';

/** The extensions SES refuses (https://docs.aws.amazon.com/ses/latest/dg/mime-types.html). */
const SES_LIST =
  'ade adp app asp bas bat cer chm cmd com cpl crt csh der exe fxp gadget hlp hta inf ins isp its js jse ksh lib lnk mad maf mag mam maq mar mas mat mau mav maw mda mdb mde mdt mdw mdz msc msh msh1 msh2 mshxml msh1xml msh2xml msi msp mst ops pcd pif plg prf prg reg scf scr sct shb shs sys ps1 ps1xml ps2 ps2xml psc1 psc2 tmp url vb vbe vbs vps vsmacros vss vst vsw vxd ws wsc wsf wsh xnk';
/** What the issue names besides: scripts, installers, packages and disk images. */
const ISSUE_LIST =
  'exe bat cmd com js jse vbs vbe wsf wsh ws scr pif cpl jar msi msp mst ps1 psm1 psd1 hta lnk reg dll sys sh bash app dmg pkg deb rpm apk appx msix iso img vhd vhdx';
const EXTENSIONS = [...new Set(`${SES_LIST} ${ISSUE_LIST}`.split(' '))];

const CONTENT_TYPES = [
  'application/x-msdownload',
  'application/x-msdos-program',
  'application/x-ms-installer',
  'application/x-msi',
  'application/vnd.microsoft.portable-executable',
  'application/x-dosexec',
  'application/java-archive',
  'application/x-java-archive',
  'application/javascript',
  'text/javascript',
  'application/x-javascript',
  'application/x-sh',
  'application/x-shellscript',
  'application/hta',
  'text/vbscript',
  'application/x-bat',
];

const b64 = (bytes: readonly number[] | string) =>
  (typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes)).toString('base64');

/** First bytes of real executables, padded as the files are. */
const EXECUTABLES: readonly (readonly [string, string, string])[] = [
  [
    'a PE (MZ) file',
    b64([0x4d, 0x5a, 0x90, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00]),
    'a Windows executable',
  ],
  ['an ELF file', b64([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00]), 'an ELF executable'],
  ['a 32-bit Mach-O file', b64([0xfe, 0xed, 0xfa, 0xce, 0x00, 0x00]), 'a Mach-O executable or Java class'],
  ['a 64-bit Mach-O file', b64([0xfe, 0xed, 0xfa, 0xcf, 0x00, 0x00]), 'a Mach-O executable or Java class'],
  [
    'a little-endian Mach-O file',
    b64([0xce, 0xfa, 0xed, 0xfe, 0x07, 0x00]),
    'a Mach-O executable or Java class',
  ],
  [
    'a little-endian 64-bit Mach-O file',
    b64([0xcf, 0xfa, 0xed, 0xfe, 0x07, 0x00]),
    'a Mach-O executable or Java class',
  ],
  [
    'a universal binary',
    b64([0xca, 0xfe, 0xba, 0xbe, 0x00, 0x00, 0x00, 0x02]),
    'a Mach-O executable or Java class',
  ],
  ['a Windows shortcut', b64([0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0x00, 0, 0]), 'a Windows shortcut'],
  ['a shell script', b64('#!/bin/sh\nrm -rf ~\n'), 'a script with a #! interpreter line'],
  [
    'an env script with a space',
    b64('#! /usr/bin/env python3\nprint(1)\n'),
    'a script with a #! interpreter line',
  ],
];

/** Ordinary attachments, with their real first bytes. */
const ORDINARY: readonly (readonly [string, string, string])[] = [
  ['invoice.pdf', 'application/pdf', b64('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n')],
  ['logo.png', 'image/png', b64([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
  ['photo.jpg', 'image/jpeg', b64([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10])],
  ['orders.csv', 'text/csv', b64('MZ,Maputo,42\nAO,Luanda,7\n')],
  [
    'letter.docx',
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    b64('PK\x03\x04\x14\x00'),
  ],
  ['archive.zip', 'application/zip', b64('PK\x03\x04\x14\x00')],
  ['notes.txt', 'text/plain', b64('#!important: bring the mugs\n')],
  ['example.com.pdf', 'application/pdf', b64('%PDF-1.4\n')],
  ['page.html', 'text/html', b64('<!doctype html><p>hi</p>')],
];

/** The `errors` of the 422 a body gets. */
function errorsOf(body: unknown) {
  const problem = problemOfSync(() => validateSendRequest(body));
  expect(problem.status).toBe(422);
  return problem.errors;
}

describe('attachment safety', () => {
  it('refuses every extension of the SES list and of the issue', () => {
    // Prepare / Act
    const allowed = EXTENSIONS.filter((ext) => executableExtension(`invoice.${ext}`) !== ext);

    // Assess
    expect(allowed).toEqual([]);
    expect(EXTENSIONS.filter((ext) => !REFUSED_EXTENSIONS.has(ext))).toEqual([]);
  });

  it.each(EXTENSIONS)('refuses a .%s attachment through the API on its filename', (ext) => {
    // Prepare
    const body = sendBody({ attachments: [{ filename: `file.${ext}`, content: 'aGk=' }] });

    // Act
    const errors = errorsOf(body);

    // Assess
    expect(errors).toEqual([
      {
        path: 'attachments[0].filename',
        message: `executable or script attachments are not allowed (.${ext} files run when opened)`,
      },
    ]);
  });

  it.each([
    ['upper case', 'INVOICE.EXE', 'exe'],
    ['mixed case', 'Invoice.ExE', 'exe'],
    ['a double extension', 'invoice.pdf.exe', 'exe'],
    ['a trailing dot', 'a.exe.', 'exe'],
    ['a trailing space', 'a.exe ', 'exe'],
    ['trailing dots and spaces', 'a.scr. . .', 'scr'],
    ['a right-to-left override', 'invoice\u202Efdp.exe', 'exe'],
    ['a zero-width space in the extension', 'invoice.e\u200Bxe', 'exe'],
    ['a name that is only an extension', '.bat', 'bat'],
  ])('sees through %s', (_what, filename, extension) => {
    // Prepare / Act
    const found = executableExtension(filename);

    // Assess
    expect(found).toBe(extension);
  });

  it.each([
    ['an executable name before the real extension', 'setup.exe.pdf'],
    ['a domain name before the extension', 'example.com.pdf'],
    ['no extension', 'README'],
    ['an archive', 'invoices.zip'],
    ['a compressed tarball', 'backup.tar.gz'],
    ['a dot file', '.bashrc'],
  ])('lets a file with %s through', (_what, filename) => {
    // Prepare / Act
    const found = executableExtension(filename);

    // Assess
    expect(found).toBeUndefined();
  });

  it('refuses every listed content type', () => {
    // Prepare / Act
    const allowed = CONTENT_TYPES.filter((type) => !isRefusedContentType(type));

    // Assess
    expect(allowed).toEqual([]);
    expect(CONTENT_TYPES.filter((type) => !REFUSED_CONTENT_TYPES.has(type))).toEqual([]);
  });

  it.each([...REFUSED_CONTENT_TYPES])('refuses %s through the API on its contentType', (contentType) => {
    // Prepare
    const body = sendBody({ attachments: [{ filename: 'notes.txt', contentType, content: 'aGk=' }] });

    // Act
    const errors = errorsOf(body);

    // Assess
    expect(errors).toEqual([
      {
        path: 'attachments[0].contentType',
        message: `executable or script attachments are not allowed (${contentType})`,
      },
    ]);
  });

  it('matches a content type whatever its case and parameters', () => {
    // Prepare / Act
    const refused = isRefusedContentType('Application/X-MSDownload; name="a.txt"');

    // Assess
    expect(refused).toBe(true);
  });

  it.each(EXECUTABLES)('refuses %s hidden under report.pdf and application/pdf', (_what, content, kind) => {
    // Prepare
    const body = sendBody({
      attachments: [{ filename: 'report.pdf', contentType: 'application/pdf', content }],
    });

    // Act
    const errors = errorsOf(body);

    // Assess
    expect(errors).toEqual([
      {
        path: 'attachments[0].content',
        message: `executable or script attachments are not allowed (the content is ${kind}, whatever its name says)`,
      },
    ]);
  });

  it('sniffs line-wrapped content, leading whitespace included', () => {
    // Prepare
    const content = `\r\n  ${b64([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0]).replace(/(.{4})/g, '$1\r\n')}`;

    // Act
    const kind = sniffExecutable(content);

    // Assess
    expect(kind).toBe('an ELF executable');
  });

  it.each(ORDINARY)('accepts %s (%s)', (filename, contentType, content) => {
    // Prepare
    const body = sendBody({ attachments: [{ filename, contentType, content }] });

    // Act
    const message = validateSendRequest(body);

    // Assess
    expect(message.attachments).toEqual([{ filename, contentType, content, disposition: 'attachment' }]);
  });

  it('gives one reason per attachment: the filename before the type before the content', () => {
    // Prepare / Act
    const both = attachmentRefusal({
      filename: 'a.exe',
      contentType: 'application/x-msdownload',
      content: 'TVqQAA==',
    });
    const typeAndContent = attachmentRefusal({
      filename: 'a.pdf',
      contentType: 'application/x-msdownload',
      content: 'TVqQAA==',
    });

    // Assess
    expect(both?.field).toBe('filename');
    expect(typeAndContent?.field).toBe('contentType');
  });

  it('reports each refused attachment at its own path, next to the other failures', () => {
    // Prepare
    const body = sendBody({
      attachments: [
        { filename: 'ok.pdf', content: b64('%PDF-1.7') },
        { filename: 'run.js', content: 'aGk=' },
        { filename: 'x.txt', contentType: 'text/javascript', content: 'aGk=' },
        { filename: 'bad\\path.pdf', content: b64([0x7f, 0x45, 0x4c, 0x46]) },
      ],
    });

    // Act
    const errors = errorsOf(body);

    // Assess
    expect(errors).toEqual([
      { path: 'attachments[3].filename', message: 'filename must not contain a path' },
      {
        path: 'attachments[1].filename',
        message: 'executable or script attachments are not allowed (.js files run when opened)',
      },
      {
        path: 'attachments[2].contentType',
        message: 'executable or script attachments are not allowed (text/javascript)',
      },
      {
        path: 'attachments[3].content',
        message:
          'executable or script attachments are not allowed (the content is an ELF executable, whatever its name says)',
      },
    ]);
  });
});
