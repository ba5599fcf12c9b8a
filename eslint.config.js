import neostandard from 'neostandard'
import globals from 'globals'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**'] }),
  {
    rules: {
      // `void promise` marks a deliberately detached task.
      'no-void': ['error', { allowAsStatement: true }],
      // TypeBox idiom: a schema value and its Static<> type share one name.
      '@typescript-eslint/no-redeclare': 'off'
    }
  },
  // The dashboard's files run in the browser.
  { files: ['ui/**/*.js'], languageOptions: { globals: globals.browser } }
]
