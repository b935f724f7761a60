/**
 * Whether a DER certificate says basicConstraints CA:TRUE. OpenSSL's own flag (a peer
 * certificate's or X509Certificate's `ca`) is true only when keyUsage also allows certificate
 * signing; a leaf claiming CA:TRUE at all (a client, the signer of signed work) is refused, so
 * the extension is read directly.
 */
const BASIC_CONSTRAINTS_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x13]);

/** True when `der` carries basicConstraints with cA TRUE (short-form lengths, as such extensions are). */
export function claimsCa(der: Buffer | undefined): boolean {
  if (!der) return false;
  let i = der.indexOf(BASIC_CONSTRAINTS_OID);
  while (i >= 0) {
    let p = i + BASIC_CONSTRAINTS_OID.length;
    if (der[p] === 0x01 && der[p + 1] === 0x01) p += 3; // critical BOOLEAN
    if (der[p] === 0x04 && der[p + 2] === 0x30) {
      const q = p + 4; // first element of the SEQUENCE
      if (der[p + 3] !== 0 && der[q] === 0x01 && der[q + 1] === 0x01) return der[q + 2] !== 0x00;
      return false;
    }
    i = der.indexOf(BASIC_CONSTRAINTS_OID, i + 1);
  }
  return false;
}
