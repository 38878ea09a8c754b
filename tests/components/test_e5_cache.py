"""The parse-time e5 cache (bot/components/topic_model.py) gives exactly the encoder's vectors."""
from __future__ import annotations

import numpy as np

from bot.components import topic_model
from bot.components.topic_model import TopicModel, e5_embed


def test_a_repeated_message_is_encoded_once_and_gets_the_same_vector():
    topic_model._e5_one.cache_clear()
    first = e5_embed(["租房可以提取公积金吗"])
    again = e5_embed(["租房可以提取公积金吗"])
    assert topic_model._e5_one.cache_info().hits == 1
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[0], topic_model._e5_batch(["租房可以提取公积金吗"])[0])


def test_every_id_number_is_one_text_for_the_encoder_once_numbers_are_masked():
    model = TopicModel()
    assert model.mask_places("320402199403120454") == model.mask_places("110105198503120019") == "9"


def test_training_batches_are_not_cached():
    topic_model._e5_one.cache_clear()
    texts = [f"问题{i}" for i in range(topic_model.PARSE_BATCH + 1)]
    assert e5_embed(texts).shape == (len(texts), 384)
    assert topic_model._e5_one.cache_info().currsize == 0
