/**
 * Attachment safety (DESIGN §4 "executable attachment types are refused"): an attachment that a
 * recipient's computer would run when opened is refused at the API with a 422, by its file name,
 * by its declared content type, and by the first bytes of its content (so renaming an executable
 * to `report.pdf` does not get it through).
 *
 * Archives are allowed (`.zip` is everyday business mail, and SES accepts it); Baton does not look
 * inside them. HTML and SVG attachments are allowed too: they are documents a browser opens in a
 * sandboxed origin, and SES accepts them.
 */

/**
 * Amazon SES refuses a message carrying any of these (its "unsupported attachment types"
 * list, https://docs.aws.amazon.com/ses/latest/dg/mime-types.html). Refusing them here answers the
 * client at once with a 422 instead of a message that is accepted and then rejected by SES.
 */
// biome-ignore format: one list, as SES publishes it
const SES_REFUSED_EXTENSIONS = [
  'ade', 'adp', 'app', 'asp', 'bas', 'bat', 'cer', 'chm', 'cmd', 'com', 'cpl', 'crt', 'csh', 'der',
  'exe', 'fxp', 'gadget', 'hlp', 'hta', 'inf', 'ins', 'isp', 'its', 'js', 'jse', 'ksh', 'lib', 'lnk',
  'mad', 'maf', 'mag', 'mam', 'maq', 'mar', 'mas', 'mat', 'mau', 'mav', 'maw', 'mda', 'mdb', 'mde',
  'mdt', 'mdw', 'mdz', 'msc', 'msh', 'msh1', 'msh2', 'mshxml', 'msh1xml', 'msh2xml', 'msi', 'msp',
  'mst', 'ops', 'pcd', 'pif', 'plg', 'prf', 'prg', 'reg', 'scf', 'scr', 'sct', 'shb', 'shs', 'sys',
  'ps1', 'ps1xml', 'ps2', 'ps2xml', 'psc1', 'psc2', 'tmp', 'url', 'vb', 'vbe', 'vbs', 'vps',
  'vsmacros', 'vss', 'vst', 'vsw', 'vxd', 'ws', 'wsc', 'wsf', 'wsh', 'xnk',
] as const;

/**
 * What SES lets through but an operating system still runs or installs on a double click:
 * PowerShell modules, Java archives, Unix shell scripts, macOS, Linux, Android and Windows
 * packages, DLLs, Excel add-ins, ClickOnce and Java Web Start launchers, and the disk images
 * (`.iso`, `.img`, `.vhd`) that malware uses to carry an executable past mark-of-the-web checks.
 */
// biome-ignore format: a list of names
const OTHER_EXECUTABLE_EXTENSIONS = [
  'psm1', 'psd1', 'jar', 'dll', 'sh', 'bash', 'dmg', 'pkg', 'deb', 'rpm', 'apk', 'appx', 'msix',
  'iso', 'img', 'vhd', 'vhdx', 'xll', 'application', 'appref-ms', 'jnlp',
] as const;

export const REFUSED_EXTENSIONS: ReadonlySet<string> = new Set([
  ...SES_REFUSED_EXTENSIONS,
  ...OTHER_EXECUTABLE_EXTENSIONS,
]);

/** Media types of executables, installers and scripts (parameters and case ignored). */
export const REFUSED_CONTENT_TYPES: ReadonlySet<string> = new Set([
  'application/x-msdownload',
  'application/x-msdos-program',
  'application/x-ms-installer',
  'application/x-msi',
  'application/x-ms-shortcut',
  'application/x-ms-application',
  'application/vnd.microsoft.portable-executable',
  'application/x-dosexec',
  'application/x-executable',
  'application/x-elf',
  'application/x-sharedlib',
  'application/x-mach-binary',
  'application/x-apple-diskimage',
  'application/vnd.android.package-archive',
  'application/java-archive',
  'application/x-java-archive',
  'application/x-java-jnlp-file',
  'application/javascript',
  'application/x-javascript',
  'application/ecmascript',
  'text/javascript',
  'text/ecmascript',
  'application/x-sh',
  'application/x-shellscript',
  'application/x-csh',
  'text/x-shellscript',
  'application/hta',
  'text/vbscript',
  'application/x-vbscript',
  'application/x-bat',
  'application/bat',
  'application/x-powershell',
]);

export type AttachmentField = 'filename' | 'contentType' | 'content';

export interface AttachmentRefusal {
  readonly field: AttachmentField;
  readonly message: string;
}

/** The parts of an attachment the checks read; anything not a string is left to the schema. */
export interface AttachmentInput {
  readonly filename?: unknown;
  readonly contentType?: unknown;
  /** Base64 (whitespace allowed, as line-wrapped base64 is). */
  readonly content?: unknown;
}

/**
 * Why `attachment` is refused, or `undefined` when it may be sent. One reason per attachment
 * (file name first, then content type, then content), so the client reads one clear message.
 */
export function attachmentRefusal(attachment: AttachmentInput): AttachmentRefusal | undefined {
  const { filename, contentType, content } = attachment;
  if (typeof filename === 'string') {
    const extension = executableExtension(filename);
    if (extension !== undefined) {
      return {
        field: 'filename',
        message: `executable or script attachments are not allowed (.${extension} files run when opened)`,
      };
    }
  }
  if (typeof contentType === 'string' && isRefusedContentType(contentType)) {
    return {
      field: 'contentType',
      message: `executable or script attachments are not allowed (${contentType.toLowerCase()})`,
    };
  }
  if (typeof content === 'string') {
    const kind = sniffExecutable(content);
    if (kind !== undefined) {
      return {
        field: 'content',
        message: `executable or script attachments are not allowed (the content is ${kind}, whatever its name says)`,
      };
    }
  }
  return undefined;
}

/**
 * The refused extension `filename` ends in, if any. Windows drops trailing dots and spaces
 * (`a.exe.` and `a.exe ` open as `a.exe`), and invisible format characters such as the
 * right-to-left override (`invoice\u202Efdp.exe`, shown as `invoiceexe.pdf`) only disguise the
 * name; only the last extension decides what runs, so `invoice.pdf.exe` is refused and
 * `example.com.pdf` is not.
 */
export function executableExtension(filename: string): string | undefined {
  const name = filename
    .replace(/\p{Cf}/gu, '')
    .replace(/[.\s]+$/u, '')
    .toLowerCase();
  const dot = name.lastIndexOf('.');
  if (dot === -1) return undefined;
  const extension = name.slice(dot + 1);
  return REFUSED_EXTENSIONS.has(extension) ? extension : undefined;
}

export function isRefusedContentType(contentType: string): boolean {
  const essence = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return REFUSED_CONTENT_TYPES.has(essence);
}

/** Enough base64 for every signature below (96 bytes). */
const SNIFF_BASE64_CHARS = 128;

/**
 * What the first bytes say the content is, when that is something that runs: a Windows PE
 * (`MZ` and a binary DOS header, so a CSV whose first cell is "MZ" is not caught), ELF, Mach-O
 * (and `CA FE BA BE`, shared by Mach-O universal binaries and Java classes), a Windows shortcut,
 * or a script with a `#!` interpreter line.
 */
export function sniffExecutable(base64: string): string | undefined {
  const prefix = base64.replace(/\s+/g, '').slice(0, SNIFF_BASE64_CHARS);
  const bytes = Buffer.from(prefix.slice(0, prefix.length - (prefix.length % 4)), 'base64');
  const starts = (...signature: number[]) => signature.every((b, i) => bytes[i] === b);
  // Any DOS/PE header has NUL bytes in its first 64; text starting with "MZ" has none.
  if (starts(0x4d, 0x5a) && bytes.subarray(0, 64).includes(0)) return 'a Windows executable';
  if (starts(0x7f, 0x45, 0x4c, 0x46)) return 'an ELF executable';
  if (
    starts(0xfe, 0xed, 0xfa, 0xce) ||
    starts(0xfe, 0xed, 0xfa, 0xcf) ||
    starts(0xce, 0xfa, 0xed, 0xfe) ||
    starts(0xcf, 0xfa, 0xed, 0xfe) ||
    starts(0xca, 0xfe, 0xba, 0xbe)
  ) {
    return 'a Mach-O executable or Java class';
  }
  if (starts(0x4c, 0x00, 0x00, 0x00, 0x01, 0x14, 0x02, 0x00)) return 'a Windows shortcut';
  if (/^#!\s*\//.test(bytes.subarray(0, 64).toString('latin1'))) return 'a script with a #! interpreter line';
  return undefined;
}
