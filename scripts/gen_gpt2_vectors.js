// Writes tests/data/gpt2_vectors.json: texts and the token ids GPT-2's reference
// encoder (the npm package gpt-3-encoder, fetched by scripts/fetch.sh gpt2) gives
// them. The C++ test compares flopwise's GPT-2 tokenizer against these, without node.
// Run: node scripts/gen_gpt2_vectors.js
const fs = require('fs');
const path = require('path');
const root = path.join(__dirname, '..');
const { encode } = require(path.join(root, 'data', 'tokenizers', 'gpt2', 'Encoder.js'));

const texts = [
  'Hello world',
  "The quick brown fox jumps over the lazy dog.",
  "I'm sure you'll see they've done what we'd've said: it's John's, isn't it? THEY'RE HERE'S 'S",
  "rock 'n' roll ''quoted'' 'single' '' ' 's 'sa 'll 'LL",
  '    four spaces, then\ttab\t\tand\nnewline\n\n\nthree   \n  \n',
  'trailing spaces   ',
  '   leading spaces',
  ' ',
  '\n',
  '\r\n\r\nWindows lines\r\n',
  '\u00a0non-breaking\u00a0space and\u3000ideographic space\u2028line sep',
  'Numbers: 3.14159, 1,000,000, 2024-11-24, 0x7fff, ١٢٣ Ⅻ ½ ²',
  'Punctuation!!! ??? ... --- ((nested)) [brackets] {braces} <angle> @#$%^&*',
  '","  "],"  "}," \'," ".",",  ],[  \'\',\' .,"  ),"  Ġ,"',
  'Ünïcödé ñandú façade naïve Straße ÆØÅ æøå',
  '日本語のテキスト、中文文本。한국어 텍스트',
  'Русский текст и ελληνικά και עברית ועוד عربي',
  'Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇺🇸 🏳️‍🌈 ❤️ 🤖',
  'Combining: e\u0301 a\u0308 n\u0303 Z\u0351\u0352 \u200b zero\u200dwidth',
  'def f(x):\n    return x**2  # square\n\nprint(f(3))\n',
  '<html><body class="main">Hi &amp; bye</body></html>',
  'https://example.com/path?query=1&b=2#frag user@example.org',
  'A'.repeat(100) + ' ' + 'ab'.repeat(60),
  ' '.repeat(70) + 'x' + '\n'.repeat(30),
  '1234567890'.repeat(8),
  'Mr. and Mrs. J. M. Cheshire of Griffin, Ga., said "no evidence" that any irregularities took place.',
  '',
];

// Random strings over a tricky alphabet (seeded, so the file is reproducible).
let seed = 12345;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const alphabet = [..."abcXYZ019 \t\n\r'\"\\,.;:!?-_()[]{}<>/@#$%^&*~`|+=", 'sT', "'s", "'ll", "'re",
  'é', 'ß', 'ñ', '中', '文', 'ア', '한', 'ж', 'λ', 'ע', 'ع', '١', '½', 'Ⅻ', '😀', '👍🏽', '🇺🇸', '\u00a0', '\u3000',
  '\u200b', '\u0301', '  ', '\n\n', ',"', '",'];
for (let i = 0; i < 300; i++) {
  const n = 1 + Math.floor(rand() * 40);
  let s = '';
  for (let k = 0; k < n; k++) s += alphabet[Math.floor(rand() * alphabet.length)];
  texts.push(s);
}
// Brown Corpus sentences, when it has been fetched and prepared.
const brown = path.join(root, 'data', 'brown-bytes', 'val.txt');
if (fs.existsSync(brown)) texts.push(...fs.readFileSync(brown, 'utf-8').split('\n').slice(0, 40).map(l => l + '\n'));

const out = texts.map(text => ({ text, ids: encode(text) }));
fs.writeFileSync(path.join(root, 'tests', 'data', 'gpt2_vectors.json'), JSON.stringify(out, null, 0).replace(/},{/g, '},\n{') + '\n');
console.log(`wrote ${out.length} vectors`);
