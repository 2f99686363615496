/** The `workerd` package's main export: the path of the native binary for this platform. */
declare module 'workerd' {
  const binary: string;
  export default binary;
}
