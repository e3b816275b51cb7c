// A QR code of a new auth key, as an SVG document: the page shows it as an
// image (a data: URL), so no markup from the server is ever put into the page.
import QRCode from 'qrcode';

export async function qrSvg(text: string): Promise<string> {
  return QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}
