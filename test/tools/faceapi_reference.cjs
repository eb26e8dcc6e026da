// Reference face descriptors from face-api's own JavaScript, to check src/nn/face_descriptor.c
// by hand; no test needs this script. Set-up (network access, outside the repository):
//   npm install @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 \
//       third_party/face-api/vladmandic-face-api-1.7.15.tgz
// Usage: node faceapi_reference.cjs MODEL_DIR FACE.rgb [OURS.f32] ...
//   FACE.rgb: 150x150 interleaved 8-bit RGB (e.g. dc_face_crop's pixels); OURS.f32: our 128
//   float32 descriptor of the same face, to print the largest difference. Runs the pure-JS
//   cpu backend and prints each descriptor as a C initialiser.
const fs = require('fs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const tf = faceapi.tf;

(async () => {
  const [dir, ...files] = process.argv.slice(2);
  if (!dir || files.length === 0) {
    console.error('usage: node faceapi_reference.cjs MODEL_DIR FACE.rgb [OURS.f32] ...');
    process.exit(2);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  await faceapi.nets.faceRecognitionNet.loadFromDisk(dir);
  for (let i = 0; i < files.length; i++) {
    const face = fs.readFileSync(files[i]);
    const x = tf.tensor3d(new Int32Array(face), [150, 150, 3], 'int32');
    const d = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(x);
    x.dispose();
    console.log(`/* ${files[i]} */ {${Array.from(d).map((v) => v.toPrecision(9)).join(', ')}}`);
    if (files[i + 1] && files[i + 1].endsWith('.f32')) {
      const b = fs.readFileSync(files[++i]);
      const ours = new Float32Array(b.buffer, b.byteOffset, 128);
      let diff = 0;
      for (let k = 0; k < 128; k++) diff = Math.max(diff, Math.abs(ours[k] - d[k]));
      console.log(`max |${files[i]} - face-api| = ${diff.toExponential(3)}`);
    }
  }
})();
