package dev.kerassparse.listops

import kotlin.random.Random

/** ListOps in plain Kotlin: the tokenizer and the evaluator, held to the Python side by golden vectors. */
object ListOps {
    val OPERATORS = listOf("[MAX", "[MIN", "[MED", "[SM")

    /** Token ids for the model: <cls>, the expression's tokens, then padding (id 0) up to [seqLen]. */
    fun encode(expression: String, vocabulary: Vocabulary, seqLen: Int): IntArray {
        val words = expression.trim().split(Regex("\\s+")).filter { it.isNotEmpty() }
        require(words.size + 1 <= seqLen) {
            "The expression has ${words.size} tokens; this model reads at most ${seqLen - 1}."
        }
        val ids = IntArray(seqLen)
        ids[0] = vocabulary.clsId
        words.forEachIndexed { i, word ->
            val id = vocabulary.tokens.indexOf(word)
            require(id >= 2) { "Unknown token \"$word\": use [MAX [MIN [MED [SM ] and digits 0-9." }
            ids[i + 1] = id
        }
        return ids
    }

    /** The value of an expression: MAX, MIN, MED (median rounded down), SM (sum mod 10). */
    fun evaluate(expression: String): Int {
        val stack = java.util.ArrayDeque<MutableList<Any>>()
        stack.addLast(mutableListOf())
        for (token in expression.trim().split(Regex("\\s+"))) {
            when {
                token in OPERATORS -> stack.addLast(mutableListOf(token))
                token == "]" -> {
                    require(stack.size >= 2) { "Unbalanced \"]\"." }
                    val frame = stack.removeLast()
                    val values = frame.drop(1).map { it as Int }
                    stack.last().add(apply(frame[0] as String, values))
                }
                token.length == 1 && token[0].isDigit() -> stack.last().add(token.toInt())
                else -> throw IllegalArgumentException("Unknown token \"$token\".")
            }
        }
        require(stack.size == 1 && stack.last().size == 1) { "The expression is not complete." }
        return stack.last()[0] as Int
    }

    private fun apply(operator: String, values: List<Int>): Int {
        val sorted = values.sorted()
        return when (operator) {
            "[MAX" -> sorted.last()
            "[MIN" -> sorted.first()
            "[MED" -> (sorted[(sorted.size - 1) / 2] + sorted[sorted.size / 2]) / 2
            else -> values.sum() % 10
        }
    }

    /** A random expression of at most [maxTokens] tokens (depth <= 10, 2-10 arguments, as the training data). */
    fun generate(maxTokens: Int, random: Random = Random.Default): String {
        while (true) {
            val tokens = mutableListOf<String>()
            fun grow(depth: Int) {
                if (tokens.size > maxTokens) return
                if (depth > 1 && (depth >= 10 || random.nextDouble() >= 0.25)) {
                    tokens.add(random.nextInt(10).toString())
                    return
                }
                tokens.add(OPERATORS[random.nextInt(4)])
                repeat(2 + random.nextInt(9)) { grow(depth + 1) }
                tokens.add("]")
            }
            grow(1)
            if (tokens.size in 8..maxTokens) return tokens.joinToString(" ")
        }
    }
}

/** The model's vocabulary, as the main job saves it (`listops_vocab.json`): id 0 pads, id 1 is <cls>. */
data class Vocabulary(val tokens: List<String>, val padId: Int = 0, val clsId: Int = 1)
