package dev.kerassparse.listops

import org.json.JSONObject
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import kotlin.random.Random

/** The Kotlin tokenizer and evaluator against the golden vectors the Python side wrote (and checked). */
class ListOpsTest {
    private fun resource(name: String) = javaClass.classLoader!!.getResource(name)!!.readText()

    private val golden = JSONObject(resource("golden.json"))
    private val vocabulary = JSONObject(resource("listops_vocab.json")).getJSONArray("tokens").let { tokens ->
        Vocabulary(List(tokens.length()) { tokens.getString(it) })
    }

    @Test
    fun tokenIdsEqualThePythonTokenizer() {
        val examples = golden.getJSONArray("examples")
        for (i in 0 until examples.length()) {
            val example = examples.getJSONObject(i)
            // stored without padding: 0s follow up to seq_len
            val ids = example.getJSONArray("token_ids")
            val expected = IntArray(golden.getInt("seq_len")) { if (it < ids.length()) ids.getInt(it) else 0 }
            assertArrayEquals(expected, ListOps.encode(example.getString("expression"), vocabulary, golden.getInt("seq_len")))
        }
    }

    @Test
    fun answersEqualThePythonEvaluator() {
        val examples = golden.getJSONArray("examples")
        for (i in 0 until examples.length()) {
            val example = examples.getJSONObject(i)
            assertEquals(example.getInt("answer"), ListOps.evaluate(example.getString("expression")))
        }
    }

    @Test
    fun generatedExpressionsFitAndEvaluate() {
        val random = Random(1)
        repeat(50) {
            val expression = ListOps.generate(120, random)
            assertTrue(expression.split(" ").size <= 120)
            assertTrue(ListOps.evaluate(expression) in 0..9)
        }
    }
}
