/** xhr2: XMLHttpRequest for Node (dicomweb-client speaks XHR); no published types. */
declare module "xhr2" {
  const XMLHttpRequest: unknown;
  export default XMLHttpRequest;
}
